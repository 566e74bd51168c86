// Hugging Face tokenizers (tokenizer.json: BPE, Unigram, WordPiece) behind the Tokenizer interface, with the
// special tokens, stop tokens and chat template resolved from a model directory's files as transformers and TRL
// resolve them. Platform-neutral: it takes the files' contents; tokenizer_node.ts reads them from a directory.
import { Tokenizer as TokenizerCore } from '@huggingface/tokenizers';
import { ChatTemplate, type ChatMessage, type ChatTemplateOptions, type TemplateSpecialTokens } from './chat_template.js';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer.js';

/** A JSON file's contents: its text, or the parsed object. */
export type JsonFile = string | Record<string, unknown>;

/** The files of a model directory a tokenizer is built from; only tokenizer.json is required. */
export interface HfTokenizerFiles {
  /** tokenizer.json */
  tokenizer: JsonFile;
  /** tokenizer_config.json: special tokens, chat_template, clean_up_tokenization_spaces. */
  tokenizerConfig?: JsonFile | null;
  /** special_tokens_map.json: special tokens of older repositories, where tokenizer_config.json has none. */
  specialTokensMap?: JsonFile | null;
  /** generation_config.json: its eos_token_id (one id or a list) are the generation stop tokens. */
  generationConfig?: JsonFile | null;
  /** config.json: its eos_token_id is the stop token fallback when generation_config.json has none. */
  modelConfig?: JsonFile | null;
  /** chat_template.jinja: where current transformers saves the template; it wins over tokenizer_config.json's. */
  chatTemplate?: string | null;
}

/** File names of a model directory, by HfTokenizerFiles field. */
export const HF_TOKENIZER_FILE_NAMES: Readonly<Record<keyof HfTokenizerFiles, string>> = {
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  specialTokensMap: 'special_tokens_map.json',
  generationConfig: 'generation_config.json',
  modelConfig: 'config.json',
  chatTemplate: 'chat_template.jinja',
};

export class TokenizerFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerFileError';
  }
}

function parseJsonFile(file: JsonFile | null | undefined, name: string): Record<string, unknown> | null {
  if (file === null || file === undefined) return null;
  let value: unknown = file;
  if (typeof file === 'string') {
    try {
      value = JSON.parse(file.replace(/^\uFEFF/, ''));
    } catch (e) {
      throw new TokenizerFileError(`${name}: invalid JSON (${(e as Error).message})`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TokenizerFileError(`${name}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/** A special token as tokenizer_config.json writes it: a string, an AddedToken object ({content}), or null. */
function tokenString(value: unknown, where: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  throw new TokenizerFileError(`${where}: expected a token string or {"content": ...}, got ${JSON.stringify(value)}`);
}

/** eos_token_id as configs write it: one id, a list of ids, or absent. */
function tokenIdList(value: unknown, where: string): number[] | null {
  if (value === null || value === undefined) return null;
  const ids = Array.isArray(value) ? value : [value];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0)) throw new TokenizerFileError(`${where}: expected a token id or a list of token ids, got ${JSON.stringify(value)}`);
  return ids as number[];
}

type NamedTemplates = ReadonlyMap<string, string>;

/** tokenizer_config.json's chat_template: one string, or a list of {name, template} (transformers picks by name). */
function readChatTemplates(config: Record<string, unknown> | null, jinjaFile: string | null | undefined): NamedTemplates {
  if (typeof jinjaFile === 'string' && jinjaFile.length > 0) return new Map([['default', jinjaFile]]);
  const value = config?.chat_template;
  if (value === null || value === undefined) return new Map();
  if (typeof value === 'string') return new Map([['default', value]]);
  if (Array.isArray(value) && value.every((t) => typeof t?.name === 'string' && typeof t?.template === 'string')) {
    return new Map(value.map((t: { name: string; template: string }) => [t.name, t.template]));
  }
  throw new TokenizerFileError('tokenizer_config.json: chat_template must be a string or a list of {"name", "template"}');
}

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly eosId: number;
  readonly bosId: number | null;
  readonly stopTokenIds: readonly number[];
  readonly specialTokenIds: readonly number[];
  readonly chatTemplate: string | null;
  /** The special tokens by name, as the chat template sees them (pad resolved as TRL does). */
  readonly specialTokens: Readonly<{ bos: string | null; eos: string; pad: string; unk: string | null }>;
  private readonly core: TokenizerCore;
  private readonly specialIdSet: ReadonlySet<number>;
  private readonly templates: NamedTemplates;
  private readonly compiledTemplates = new Map<string, ChatTemplate>();
  private readonly templateTokens: TemplateSpecialTokens;

  /** Builds the tokenizer; a missing or unknown special token, or a malformed file, throws a TokenizerFileError. */
  constructor(readonly files: HfTokenizerFiles) {
    const tokenizerJson = parseJsonFile(files.tokenizer, 'tokenizer.json');
    if (!tokenizerJson) throw new TokenizerFileError('tokenizer.json is required');
    const config = parseJsonFile(files.tokenizerConfig, 'tokenizer_config.json') ?? {};
    const specialMap = parseJsonFile(files.specialTokensMap, 'special_tokens_map.json') ?? {};
    const generationConfig = parseJsonFile(files.generationConfig, 'generation_config.json');
    const modelConfig = parseJsonFile(files.modelConfig, 'config.json');

    // tokenizer_config.json names the special tokens; special_tokens_map.json fills the ones it leaves out.
    const named = (key: string): string | null =>
      tokenString(config[key], `tokenizer_config.json ${key}`) ?? tokenString(specialMap[key], `special_tokens_map.json ${key}`);
    const bosToken = named('bos_token');
    let eosToken = named('eos_token');
    let padToken = named('pad_token');
    const unkToken = named('unk_token');
    const additional = [config.additional_special_tokens, specialMap.additional_special_tokens]
      .find((list) => Array.isArray(list)) as unknown[] | undefined;
    const additionalTokens = (additional ?? []).map((t, i) => tokenString(t, `additional_special_tokens[${i}]`)).filter((t): t is string => t !== null);

    // The library reads special tokens as plain strings; transformers' default is not to clean up spaces.
    const coreConfig = {
      ...config, bos_token: bosToken, eos_token: eosToken, pad_token: padToken, unk_token: unkToken,
      additional_special_tokens: additionalTokens, clean_up_tokenization_spaces: config.clean_up_tokenization_spaces ?? false,
    };
    try {
      this.core = new TokenizerCore(tokenizerJson, coreConfig);
    } catch (e) {
      throw new TokenizerFileError(`tokenizer.json cannot be loaded: ${(e as Error).message}`);
    }
    let maxId = -1;
    for (const id of this.core.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const idOf = (token: string, where: string): number => {
      const id = this.core.token_to_id(token);
      if (id === undefined) throw new TokenizerFileError(`${where} ${JSON.stringify(token)} is not in tokenizer.json's vocabulary`);
      return id;
    };
    // Generation stops at generation_config.json's eos_token_id (else config.json's), and at the tokenizer's eos.
    const configStops = tokenIdList(generationConfig?.eos_token_id, 'generation_config.json eos_token_id')
      ?? tokenIdList(modelConfig?.eos_token_id, 'config.json eos_token_id') ?? [];
    if (eosToken === null) {
      if (configStops.length === 0) {
        throw new TokenizerFileError('no eos token: tokenizer_config.json has no eos_token and neither generation_config.json nor config.json an eos_token_id');
      }
      eosToken = this.core.id_to_token(configStops[0]) ?? null;
      if (eosToken === null) throw new TokenizerFileError(`eos_token_id ${configStops[0]} is not in tokenizer.json's vocabulary`);
    }
    this.eosId = idOf(eosToken, 'eos_token');
    this.stopTokenIds = [...new Set([this.eosId, ...configStops])];
    this.bosId = bosToken === null ? null : idOf(bosToken, 'bos_token');
    // TRL: a tokenizer without a pad token pads with eos.
    padToken ??= eosToken;
    this.padId = idOf(padToken, 'pad_token');
    this.specialTokens = { bos: bosToken, eos: eosToken, pad: padToken, unk: unkToken };

    const specialIds = new Set<number>();
    for (const [id, token] of this.core.get_added_tokens_decoder()) if (token.special) specialIds.add(id);
    for (const token of [bosToken, eosToken, padToken, unkToken, ...additionalTokens]) {
      const id = token === null ? undefined : this.core.token_to_id(token);
      if (id !== undefined) specialIds.add(id);
    }
    this.specialIdSet = specialIds;
    this.specialTokenIds = [...specialIds].sort((a, b) => a - b);

    this.templates = readChatTemplates(config, files.chatTemplate);
    this.chatTemplate = this.templates.get('default') ?? null;
    this.templateTokens = {
      ...(bosToken !== null ? { bos_token: bosToken } : {}), eos_token: eosToken, pad_token: padToken,
      ...(unkToken !== null ? { unk_token: unkToken } : {}), ...(additionalTokens.length ? { additional_special_tokens: additionalTokens } : {}),
    };
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode: expected a string, got ${typeof text}`);
    return this.core.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  /** Ids past the tokenizer's vocabulary (a model's padded embedding rows) decode to nothing, as in transformers. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens ?? true;
    const known: number[] = [];
    ids.forEach((id, position) => {
      if (!Number.isInteger(id) || id < 0) throw new RangeError(`cannot decode token ${id} at position ${position}: not a token id`);
      if (skipSpecial && this.specialIdSet.has(id)) return;
      if (id < this.vocabSize && this.core.id_to_token(id) !== undefined) known.push(id);
    });
    return known.length === 0 ? '' : this.core.decode(known, { skip_special_tokens: skipSpecial });
  }

  tokenToId(token: string): number | undefined {
    return this.core.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.core.id_to_token(id) : undefined;
  }

  /** Picks the named template as transformers does: 'tool_use' when tools are given and it exists, else 'default'. */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const name = options.tools && this.templates.has('tool_use') ? 'tool_use' : 'default';
    const source = this.templates.get(name);
    if (source === undefined) {
      const names = [...this.templates.keys()];
      throw new TokenizerFileError(names.length
        ? `no '${name}' chat template (this tokenizer has ${names.map((n) => `'${n}'`).join(', ')})`
        : 'this tokenizer has no chat template (tokenizer_config.json has no chat_template and there is no chat_template.jinja)');
    }
    let template = this.compiledTemplates.get(name);
    if (!template) {
      template = new ChatTemplate(source, this.templateTokens);
      this.compiledTemplates.set(name, template);
    }
    return template.render(messages, options);
  }
}
