/**
 * Preloaded into measured node children (`node --import ./bench/stats-hook.js …`):
 * at exit, writes to `$RHO_FLOW_BENCH_STATS_FILE` the child's CPU time (user,
 * system; all threads) and peak RSS (`VmHWM`), and the same for its spawner
 * helper (the Perl or node process rho-flow starts its jails from, still alive
 * at this point: it exits when its pipe from rho-flow closes), so that the
 * figures count all of rho-flow's own processes.
 */
import fs from 'node:fs';
import process from 'node:process';

/** `/proc/<pid>/stat` times are in clock ticks; Linux's USER_HZ is 100 on every common platform. */
const TICK_MS = 10;

function hwmKb(pid) {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  } catch {
    return 0;
  }
}

/** The spawner helpers among this process's children: CPU and peak RSS. */
function helpers() {
  let cpuMs = 0;
  let hwm = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== process.pid) continue; // ppid
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      // The node helper runs its program with --input-type=commonjs; the Perl one starts with a mark.
      if (!cmd.includes('--input-type=commonjs') && !cmd.includes('# rho-flow spawner helper')) continue;
      cpuMs += (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime
      hwm = Math.max(hwm, hwmKb(name));
    } catch {
      // gone meanwhile
    }
  }
  return { cpuMs, hwm };
}

process.on('exit', () => {
  const f = process.env.RHO_FLOW_BENCH_STATS_FILE;
  if (!f) return;
  const u = process.cpuUsage();
  const h = helpers();
  fs.writeFileSync(
    f,
    JSON.stringify({
      userMs: u.user / 1000,
      sysMs: u.system / 1000,
      hwmKb: hwmKb('self'),
      helperCpuMs: h.cpuMs,
      helperHwmKb: h.hwm,
    }),
  );
});
