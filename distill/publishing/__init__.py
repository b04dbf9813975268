"""Publishing: the dataset views, the data card and the Hub upload of a run."""
