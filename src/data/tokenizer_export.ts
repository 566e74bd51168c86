// What an exported Hugging Face directory needs from the tokenizer: tokenizer.json and tokenizer_config.json
// (a character vocabulary written as a BPE with no merges; a Hugging Face tokenizer's own files unchanged), and the
// special-token id fields of config.json and generation_config.json, so transformers loads, stops and pads right.
import { CHAR_EOS_TOKEN, CHAR_PAD_TOKEN, CharTokenizer, type Tokenizer } from './tokenizer.js';
import { HfTokenizer, type JsonFile } from './tokenizer_hf.js';

function addedToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * tokenizer.json for a character vocabulary: a BPE model whose vocabulary is the characters (and the special
 * tokens) at their ids, with no merges; no normalizer and no pre-tokenizer, so a text is one word that BPE splits
 * into its characters; the Fuse decoder joins tokens with nothing between them. Pad and eos are added tokens.
 */
export function tokenizerJsonForCharVocabulary(tokenizer: CharTokenizer): Record<string, unknown> {
  const vocab: Record<string, number> = { [CHAR_PAD_TOKEN]: tokenizer.padId, [CHAR_EOS_TOKEN]: tokenizer.eosId };
  tokenizer.alphabet.forEach((ch) => { vocab[ch] = tokenizer.tokenToId(ch)!; });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [addedToken(tokenizer.padId, CHAR_PAD_TOKEN), addedToken(tokenizer.eosId, CHAR_EOS_TOKEN)],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [],
    },
  };
}

/** tokenizer_config.json for a character vocabulary: PreTrainedTokenizerFast over tokenizer.json, no BOS, no cleanup. */
export function tokenizerConfigForCharVocabulary(tokenizer: CharTokenizer, options: { modelMaxLength?: number } = {}): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: Object.fromEntries([[tokenizer.padId, CHAR_PAD_TOKEN], [tokenizer.eosId, CHAR_EOS_TOKEN]].map(([id, content]) => {
      const { id: _id, ...fields } = addedToken(id as number, content as string);
      return [String(id), fields];
    })),
    bos_token: null,
    eos_token: CHAR_EOS_TOKEN,
    pad_token: CHAR_PAD_TOKEN,
    unk_token: null,
    // The task alphabet has ' ', '.', '?', '!', ','; transformers' cleanup would delete the spaces before them.
    clean_up_tokenization_spaces: false,
    ...(options.modelMaxLength !== undefined ? { model_max_length: options.modelMaxLength } : {}),
  };
}

/** The special-token id fields of a model's config.json. bos is written even when null: LlamaConfig's default is 1. */
export function configTokenIds(tokenizer: Tokenizer): { bos_token_id: number | null; eos_token_id: number; pad_token_id: number } {
  return { bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId };
}

/** The special-token fields of generation_config.json: eos_token_id lists every stop token (one id when one). */
export function generationConfigTokenIds(tokenizer: Tokenizer): { bos_token_id?: number; eos_token_id: number | number[]; pad_token_id: number } {
  const stops = [...tokenizer.stopTokenIds];
  return {
    ...(tokenizer.bosId !== null ? { bos_token_id: tokenizer.bosId } : {}),
    eos_token_id: stops.length === 1 ? stops[0] : stops,
    pad_token_id: tokenizer.padId,
  };
}

/** File name → text of the tokenizer files an exported directory holds. */
export type TokenizerExportFiles = Record<string, string>;

function jsonText(file: JsonFile): string {
  return typeof file === 'string' ? file : `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * The tokenizer files of an exported Hugging Face directory: for a character tokenizer tokenizer.json and
 * tokenizer_config.json generated from its vocabulary; for a Hugging Face tokenizer its own tokenizer.json,
 * tokenizer_config.json, special_tokens_map.json and chat_template.jinja as loaded. config.json and
 * generation_config.json are the model writer's (put configTokenIds / generationConfigTokenIds in them).
 */
export function tokenizerExportFiles(tokenizer: Tokenizer, options: { modelMaxLength?: number } = {}): TokenizerExportFiles {
  if (tokenizer instanceof CharTokenizer) {
    return {
      'tokenizer.json': jsonText(tokenizerJsonForCharVocabulary(tokenizer)),
      'tokenizer_config.json': jsonText(tokenizerConfigForCharVocabulary(tokenizer, options)),
    };
  }
  if (tokenizer instanceof HfTokenizer) {
    const { files } = tokenizer;
    return {
      'tokenizer.json': jsonText(files.tokenizer),
      ...(files.tokenizerConfig ? { 'tokenizer_config.json': jsonText(files.tokenizerConfig) } : {}),
      ...(files.specialTokensMap ? { 'special_tokens_map.json': jsonText(files.specialTokensMap) } : {}),
      ...(files.chatTemplate ? { 'chat_template.jinja': files.chatTemplate } : {}),
    };
  }
  throw new Error('tokenizerExportFiles: only CharTokenizer and HfTokenizer can be exported');
}
