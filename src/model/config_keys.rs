//! Config keys known to leave a causal LM's forward pass alone: what `config.json` holds beside
//! the architecture (ids, versions, generation and training settings). Every other key must be
//! one a family reads (see [`super::config::Fields`]), or loading stops: a setting headhunt does
//! not implement must never turn into a quiet default.
//!
//! The list is transformers' `PretrainedConfig` attributes (4.x and 5.x) and the dropout,
//! initialisation and cache settings of the supported families; a family adds its own through
//! `FamilyDef::irrelevant_keys`.

/// Keys of every family that do not change the logits of a forward pass in eval mode.
const COMMON: &[&str] = &[
    // Bookkeeping.
    "_name_or_path",
    "architectures",
    "auto_map",
    "model_type",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "id2label",
    "label2id",
    "problem_type",
    "finetuning_task",
    "tokenizer_class",
    "prefix",
    "task_specific_params",
    "_commit_hash",
    "_attn_implementation_autoset",
    "attn_implementation",
    "_attn_implementation",
    "use_return_dict",
    "return_dict",
    "output_attentions",
    "output_hidden_states",
    "torchscript",
    "use_bfloat16",
    "tf_legacy_loss",
    "pruned_heads",
    "chunk_size_feed_forward",
    "is_decoder",
    "is_encoder_decoder",
    "add_cross_attention",
    "cross_attention_hidden_size",
    "tie_encoder_decoder",
    "decoder_start_token_id",
    "sep_token_id",
    "unk_token_id",
    // Special token ids: read by the tokenizer check where they matter (bos, eos, pad).
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    // Generation settings of old configs.
    "max_length",
    "min_length",
    "do_sample",
    "early_stopping",
    "num_beams",
    "num_beam_groups",
    "diversity_penalty",
    "temperature",
    "top_k",
    "top_p",
    "typical_p",
    "repetition_penalty",
    "length_penalty",
    "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size",
    "bad_words_ids",
    "num_return_sequences",
    "output_scores",
    "return_dict_in_generate",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "remove_invalid_values",
    "exponential_decay_length_penalty",
    "suppress_tokens",
    "begin_suppress_tokens",
    // Training and caching.
    "initializer_range",
    "initializer_factor",
    "use_cache",
    "cache_implementation",
    "attention_dropout",
    "hidden_dropout",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "embd_pdrop",
    "resid_pdrop",
    "attn_pdrop",
    "dropout",
    "gradient_checkpointing",
    // Llama's tensor-parallel slicing of its matmuls gives the same products.
    "pretraining_tp",
];

/// Whether `key` is known not to change the numbers (`family` lists the family's own).
pub fn irrelevant(key: &str, family: &[&str]) -> bool {
    COMMON.contains(&key) || family.contains(&key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_have_no_duplicates() {
        let mut k = super::COMMON.to_vec();
        k.sort();
        k.dedup();
        assert_eq!(k.len(), super::COMMON.len());
    }
}
