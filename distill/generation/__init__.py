"""Generation: prompts → teacher samples in a crash-safe store → data/all (`stage.generate`)."""
