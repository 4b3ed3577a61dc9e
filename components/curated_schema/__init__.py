"""ImportSchemaGen: the curated schema (schemas/schema.pbtxt) as the pipeline's Schema artifact."""
