// Node adapter: what a pretrained run (config.model.path) reads from files, shared by `dapo train` and
// `dapo eval`/`dapo sample` so both build the same tokenizer, task and model: the model directory (or Hub id) and
// its tokenizer, the dataset task rendered with the chat template, and the model capped at model.maxSeqLen.
import type { Task } from '../data/task.js';
import { makeTask } from '../data/tasks.js';
import { type MathTaskConfig, isDatasetTask } from '../data/math_task.js';
import { loadDatasetTask } from '../data/datasets_node.js';
import { withReward } from '../data/reward_module.js';
import { loadRewardModule } from '../data/reward_module_node.js';
import { HfTokenizer } from '../data/tokenizer_hf.js';
import { loadHfTokenizer } from '../data/tokenizer_node.js';
import { directoryReader, resolveModelDir } from '../io/pretrained_node.js';
import { loadPretrainedFromFiles } from '../io/pretrained.js';
import type { FrozenDType } from '../nn/lora.js';
import type { TransformerLM } from '../nn/transformer.js';
import type { TrainConfig } from './config.js';
import { checkTaskFitsModel } from './trainer.js';

/** A pretrained run's model directory and tokenizer (config.model.path). */
export interface PretrainedSource {
  /** The --model argument as given (a directory or a Hub id): the adapter's base_model_name_or_path. */
  name: string;
  dir: string;
  tokenizer: HfTokenizer;
}

export const isPretrainedConfig = (config: TrainConfig): boolean => typeof config.model.path === 'string';

/** The model directory (a Hub id is resolved through the Hugging Face cache) and its tokenizer; null for a built-in
 *  model. `dir` reads another Hugging Face directory than model.path (a run's merged/ model). */
export async function pretrainedSource(config: TrainConfig, log: (line: string) => void, dir?: string): Promise<PretrainedSource | null> {
  if (!isPretrainedConfig(config)) return null;
  const name = config.model.path as string;
  const modelDir = dir ?? await resolveModelDir(name, { log });
  return { name, dir: modelDir, tokenizer: await loadHfTokenizer(modelDir) };
}

/** The task when it is not a plain built-in one: a dataset task (reads task.path; a pretrained model's tokenizer
 *  encodes it, its chat template renders the prompts) and/or a reward module; undefined leaves the built-in task to
 *  the caller (makeTask / buildTaskAndModel). */
export async function taskFromFiles(config: TrainConfig, pretrained: PretrainedSource | null): Promise<Task | undefined> {
  const tokenizer = pretrained?.tokenizer;
  // TRL renders conversational prompts with apply_chat_template(add_generation_prompt=True); a model without a
  // template gets the plain text.
  const renderChat = tokenizer?.chatTemplate ? (messages: Parameters<HfTokenizer['applyChatTemplate']>[0]) => tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }) : undefined;
  let task: Task | undefined = isDatasetTask(config.task.name)
    ? await loadDatasetTask(config.task as unknown as MathTaskConfig, { tokenizer, renderChat }) : undefined;
  if (config.reward) task = withReward(task ?? makeTask(config.task), await loadRewardModule(config.reward), config.reward);
  return task;
}

/** The pretrained model (config.json's architecture, the context capped at model.maxSeqLen), checked against the task. */
export async function loadPretrainedModel(config: TrainConfig, source: PretrainedSource, task: Task, opts: { frozenDtype?: FrozenDType } = {}): Promise<TransformerLM> {
  const maxSeqLen = config.model.maxSeqLen as number | undefined;
  const { model } = await loadPretrainedFromFiles(directoryReader(source.dir), { maxSeqLen, frozenDtype: opts.frozenDtype });
  checkTaskFitsModel(config, task, model);
  return model;
}
