"""The pipeline behind `distill run`: every stage chained, each skipped when its outputs are current."""
