"""Training: `sft()` fine-tunes a student on the distilled traces (`train.sft`), one GPU or several."""
