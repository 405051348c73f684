"""Who is calling: SigV4 verification, API Gateway's IAM identity, the principal that owns
sessions and runs."""
