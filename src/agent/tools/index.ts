/**
 * The tool registry: name → tool, and the definitions sent to the model.
 * Which tools a step gets is the profile policy's decision (`offeredTools`);
 * this module only maps names to implementations.
 */
import type { ToolDefinition } from '../model.js';
import type { ToolName } from '../../workflow/types.js';
import type { AnyTool, DescribeContext } from './tool.js';
import { bashTool } from './bash.js';
import { readTool } from './read.js';
import { writeTool } from './write.js';
import { editTool } from './edit.js';
import { globTool } from './glob.js';
import { grepTool } from './grep.js';
import { listTool } from './list.js';
import { runCodeTool } from './run-code.js';

export type { AnyTool, ToolContext, ToolOutput, ToolStatus } from './tool.js';

/** Every tool rho-flow implements, by name. */
export const TOOLS: Readonly<Record<ToolName, AnyTool>> = {
  bash: bashTool,
  read: readTool,
  write: writeTool,
  edit: editTool,
  glob: globTool,
  grep: grepTool,
  list: listTool,
  run_code: runCodeTool,
};

/** The tools for `names`, in that order. */
export function toolsByName(names: readonly ToolName[]): AnyTool[] {
  return names.map((n) => TOOLS[n]);
}

/** What the model is told about `tools` (descriptions may depend on the profile). */
export function toolDefinitions(tools: readonly AnyTool[], ctx: DescribeContext): ToolDefinition[] {
  return tools.map((t) => ({
    name: t.name,
    description: t.description(ctx),
    parameters: t.parameters as unknown as Record<string, unknown>,
  }));
}
