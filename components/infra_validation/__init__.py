"""InfraValidation: the candidate must load and answer in a real server before the push."""
