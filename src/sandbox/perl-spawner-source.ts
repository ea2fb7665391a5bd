/**
 * The program of the Perl spawner helper (see `perl-spawner.ts`), run with
 * `perl -e`. It uses only modules of `perl-base` (Debian's essential Perl:
 * POSIX, Fcntl, Errno, Config), so it runs wherever `perl` does.
 *
 * Protocol, both ways frames of `u32 length` + payload (big-endian):
 *
 * - in (its stdin): `S` spawn: `a N N/a* N/a* C N/a* N/a* N/a* N/a*` = type,
 *   id, file, cwd, flags (1: extra pipes at fds 3/4, 2: stdin data, 4: fd 4
 *   data), args joined by NUL, env `K=V` joined by NUL, fd 4 data, stdin
 *   data; `D` destroy: `a N` = type, id (close our ends of its pipes).
 * - out (its stdout): `P` id pid (spawned), `O` id fd bytes (output of fd 1,
 *   2 or 3), `E` id message code (could not start), `X` / `C` id code signal
 *   (exit / close: exited and every pipe closed; code -1 and signal '' for
 *   none).
 *
 * Every child leads its own session and process group. The helper ignores
 * SIGINT/SIGTERM/SIGHUP (rho-flow decides what to cancel, and restores the
 * default dispositions in each child); when its stdin closes (rho-flow has
 * gone, even by SIGKILL) it SIGKILLs every group it started and exits.
 *
 * Exits are noticed from SIGCHLD (which interrupts `select`); Perl runs
 * signal handlers between operations, so a SIGCHLD landing just before
 * `select` blocks is caught by a short poll while a child has closed its
 * pipes but is not reaped yet, and a 100 ms one otherwise.
 */
export const PERL_SPAWNER_SOURCE = String.raw`# rho-flow spawner helper
use strict; use warnings;
use POSIX ();
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK O_RDONLY);
use Errno qw(EINTR EAGAIN EWOULDBLOCK);
use Config;
my @SIGNAME = split ' ', $Config{sig_name};
$SIG{$_} = 'IGNORE' for qw(INT TERM HUP PIPE);
$SIG{CHLD} = sub {};
# fds 3 and 4 stay taken (close-on-exec), so that no pipe we make can be one of the
# fds 0-4 a child gets: the dup2 calls in the child never overwrite a later source.
open(my $hold3, '<', '/dev/null') or die; open(my $hold4, '<', '/dev/null') or die;
binmode STDIN; binmode STDOUT;
my (%kid, %bypid, %rd, %wr);
my $in = ''; my $in_open = 1;
nonblock(\*STDIN);

sub nonblock { my $fh = shift; my $f = fcntl($fh, F_GETFL, 0); fcntl($fh, F_SETFL, $f | O_NONBLOCK) or die "fcntl: $!"; }
sub killall { for my $k (values %kid) { kill '-KILL', $k->{pid} if $k->{pid}; } }
sub out {
  my $d = pack('N/a*', $_[0]); my $o = 0;
  while ($o < length $d) {
    my $n = syswrite(STDOUT, $d, length($d) - $o, $o);
    if (!defined $n) { next if $! == EINTR; killall(); POSIX::_exit(0); }
    $o += $n;
  }
}
sub errname { my $n = shift; local $! = $n; for my $k (keys %!) { return $k if $!{$k}; } return ''; }
sub status_of {
  my $st = shift;
  return (-1, $SIGNAME[$st & 127] ? 'SIG' . $SIGNAME[$st & 127] : '') if ($st & 127);
  return ($st >> 8, '');
}
sub maybe_close {
  my $id = shift; my $k = $kid{$id} or return;
  return unless defined $k->{status} && $k->{open} == 0;
  my ($code, $sig) = status_of($k->{status});
  out(pack('a N l> N/a*', 'C', $id, $code, $sig));
  delete $bypid{$k->{pid}}; delete $kid{$id};
}
sub close_read {
  my $fn = shift; my $r = delete $rd{$fn} or return;
  close($r->[0]); my $k = $kid{$r->[1]} or return;
  $k->{open}--; maybe_close($r->[1]);
}
sub reap {
  while ((my $p = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $id = $bypid{$p}; next unless defined $id;
    my $k = $kid{$id}; $k->{status} = $?;
    my ($code, $sig) = status_of($?);
    out(pack('a N l> N/a*', 'X', $id, $code, $sig));
    maybe_close($id);
  }
}
sub spawn_kid {
  my ($id, $file, $cwd, $flags, $args, $env, $fd4, $stdin) = @_;
  my @args = length $args ? split(/\0/, $args, -1) : ();
  my @env = length $env ? split(/\0/, $env, -1) : ();
  my ($o_r, $o_w, $e_r, $e_w, $s_r, $s_w, $a_r, $a_w, $i_r, $i_w, $x_r, $x_w);
  pipe($o_r, $o_w) && pipe($e_r, $e_w) && pipe($x_r, $x_w)
    && (!($flags & 1) || (pipe($s_r, $s_w) && pipe($a_r, $a_w)))
    && (!($flags & 2) || pipe($i_r, $i_w))
    or do { my $c = errname($! + 0); out(pack('a N N/a* N/a*', 'E', $id, "spawn $file $c", $c)); out(pack('a N l> N/a*', 'C', $id, -1, '')); return; };
  my $pid = fork;
  if (!defined $pid) {
    my $c = errname($! + 0);
    out(pack('a N N/a* N/a*', 'E', $id, "spawn $file $c", $c)); out(pack('a N l> N/a*', 'C', $id, -1, ''));
    return;
  }
  if ($pid == 0) {
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE CHLD);
    POSIX::setsid();
    my $in_fd = ($flags & 2) ? fileno($i_r) : POSIX::open('/dev/null', O_RDONLY);
    my @map = ([$in_fd, 0], [fileno($o_w), 1], [fileno($e_w), 2]);
    push @map, [fileno($s_w), 3], [fileno($a_r), 4] if $flags & 1;
    my $ok = 1;
    for my $m (@map) { defined POSIX::dup2($m->[0], $m->[1]) or $ok = 0; }
    POSIX::close($in_fd) unless $flags & 2;
    $ok &&= chdir($cwd);
    if ($ok) { %ENV = (); for (@env) { my ($k, $v) = split(/=/, $_, 2); $ENV{$k} = $v // ''; } exec { $file } $file, @args; }
    syswrite($x_w, pack('N', $! + 0)); POSIX::_exit(127);
  }
  close($_) for grep { defined } ($o_w, $e_w, $x_w, $s_w, $a_r, $i_r);
  my $buf = ''; while (1) { my $n = sysread($x_r, $buf, 4, length $buf); last if defined $n && ($n == 0 || length $buf >= 4); next if !defined $n && $! == EINTR; last if !defined $n; }
  close($x_r);
  if (length $buf >= 4) {
    waitpid($pid, 0);
    my $c = errname(unpack('N', $buf));
    out(pack('a N N/a* N/a*', 'E', $id, "spawn $file $c", $c)); out(pack('a N l> N/a*', 'C', $id, -1, ''));
    close($_) for grep { defined } ($o_r, $e_r, $s_r, $a_w, $i_w);
    return;
  }
  $kid{$id} = { pid => $pid, open => 0, fds => [] };
  $bypid{$pid} = $id;
  out(pack('a N N', 'P', $id, $pid));
  for my $r ([$o_r, 1], [$e_r, 2], ($flags & 1 ? [$s_r, 3] : ())) {
    nonblock($r->[0]); $rd{fileno $r->[0]} = [$r->[0], $id, $r->[1]];
    $kid{$id}{open}++; push @{$kid{$id}{fds}}, fileno $r->[0];
  }
  for my $w (($flags & 1 ? [$a_w, ($flags & 4) ? $fd4 : ''] : ()), ($flags & 2 ? [$i_w, $stdin] : ())) {
    nonblock($w->[0]); $wr{fileno $w->[0]} = [$w->[0], $w->[1], 0];
  }
  write_ready($_) for keys %wr;
}
sub write_ready {
  my $fn = shift; my $w = $wr{$fn} or return;
  while ($w->[2] < length $w->[1]) {
    my $n = syswrite($w->[0], $w->[1], length($w->[1]) - $w->[2], $w->[2]);
    if (!defined $n) { return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR; last; }
    $w->[2] += $n;
  }
  close($w->[0]); delete $wr{$fn};
}
sub command {
  my $f = shift; my $t = substr($f, 0, 1);
  if ($t eq 'S') { spawn_kid(unpack('x N N/a* N/a* C N/a* N/a* N/a* N/a*', $f)); }
  elsif ($t eq 'D') { my $id = unpack('x N', $f); my $k = $kid{$id} or return; close_read($_) for @{$k->{fds}}; }
}
my $poll = 0.001;
while (1) {
  my $waiting = grep { $_->{open} == 0 && !defined $_->{status} } values %kid;
  $poll = $waiting ? ($poll < 0.05 ? $poll * 2 : $poll) : 0.001;
  my $timeout = $waiting ? $poll : (%kid ? 0.1 : undef);
  my ($rin, $win) = ('', '');
  vec($rin, 0, 1) = 1 if $in_open;
  vec($rin, $_, 1) = 1 for keys %rd;
  vec($win, $_, 1) = 1 for keys %wr;
  my ($rout, $wout) = ($rin, $win);
  my $n = select($rout, $wout, undef, $timeout);
  reap();
  next if $n <= 0;
  if ($in_open && vec($rout, 0, 1)) {
    my $got = sysread(STDIN, $in, 65536, length $in);
    if (defined $got && $got == 0) { killall(); POSIX::_exit(0); }
    while (length $in >= 4) {
      my $len = unpack('N', $in); last if length $in < 4 + $len;
      my $f = substr($in, 4, $len); $in = substr($in, 4 + $len);
      command($f);
    }
  }
  for my $fn (keys %rd) {
    next unless vec($rout, $fn, 1); my $r = $rd{$fn} or next;
    my $buf; my $got = sysread($r->[0], $buf, 65536);
    if (!defined $got) { next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR; close_read($fn); next; }
    if ($got == 0) { close_read($fn); next; }
    out(pack('a N C', 'O', $r->[1], $r->[2]) . $buf);
  }
  if (length $win) { for my $fn (keys %wr) { write_ready($fn) if vec($wout, $fn, 1); } }
}
`;
