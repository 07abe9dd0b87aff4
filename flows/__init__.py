"""Prefect flows: one per stage and an end-to-end flow. They wire stage functions together and hold
no logic of their own; each takes the same pydantic config the CLI builds."""
