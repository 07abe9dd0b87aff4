"""A simulated OpenAI-compatible server for sizing a fleet: ``python -m scenario_forge.simulate``.

It answers chat completions on loopback with plausible text (the fake backend's answers to our
prompts, so the pipeline keeps scenarios) after a delay that follows a batch-size throughput curve
(:mod:`.curve`): with ``n`` sequences in flight the server decodes ``rate(n)`` output tokens a
second in total, shared equally between them (processor sharing), and at most ``concurrency``
sequences run at once; the rest wait in a queue, as in vLLM. Prompt tokens cost no time (a
decode-only model). ``GET /stats`` reports what it served and how full it was
(:mod:`.server`). The curves shipped in ``curves/`` are models of vLLM on an H100, not
measurements made here; each file says where its numbers come from.
"""
