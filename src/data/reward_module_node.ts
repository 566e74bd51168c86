// Node adapter: imports a user's reward module (`dapo train --reward ./my_reward.mjs`) by path.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type RewardFunction, rewardFromModule } from './reward_module.js';

/** The reward function of an ES module file (.mjs, or .js in a "type": "module" package; CommonJS `module.exports =
 *  fn` works as the default export). */
export async function loadRewardModule(path: string): Promise<RewardFunction> {
  const absolute = resolve(path);
  if (!existsSync(absolute)) throw new Error(`reward module ${path} does not exist (resolved to ${absolute})`);
  if (/\.[mc]?tsx?$/.test(absolute)) throw new Error(`reward module ${path}: Node cannot import TypeScript directly; compile it to .mjs first`);
  let namespace: Record<string, unknown>;
  try {
    namespace = await import(pathToFileURL(absolute).href) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`reward module ${path} failed to load: ${(err as Error).message}`);
  }
  return rewardFromModule(namespace, path);
}
