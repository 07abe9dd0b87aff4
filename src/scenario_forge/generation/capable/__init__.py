"""The capable-model generation path: understanding -> ideation -> rollout -> rubric from the dialogue.

For models that write JSON reliably (7B-70B instruct models behind vLLM or an OpenAI-compatible
server, or a GGUF through llama.cpp): chosen by ``generate --path capable``, or by ``--path auto``
when the backend takes JSON schemas. See docs/generation.md ("The capable path").

- :mod:`.understanding`: once per (domain, trait) cell, cached in the run folder;
- :mod:`.ideation`: the cell's ideas in one call, near-duplicates dropped by embedding before rollout;
- :mod:`.rollout`: a user simulator reacting to the assistant's actual turns, the assistant asked as
  a chat under the operator prompt, the flawed turn last;
- :mod:`.rubric`: 5-10 atomic criteria from the whole dialogue, checked against the rules.
"""

from __future__ import annotations

from .context import CapableContext, Embed
from .pipeline import idea_embedder, resolve_path, write_capable
from .preflight import check_capable_templates

__all__ = ["CapableContext", "Embed", "check_capable_templates", "idea_embedder", "resolve_path", "write_capable"]
