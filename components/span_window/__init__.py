"""SpanWindow: the training window as references to stored spans, and bounded samples."""
