"""Turn-level detectors: role confusion, leftovers, repetition and truncation.

Each detector looks at one :class:`Turn` (and, for repetition, the turns before it) and returns a
``(code, detail)`` pair or ``None``. Patterns are compiled once at import and only run when a cheap
substring test says they could match, so most turns cost a few microseconds.
"""

from __future__ import annotations

import re

from .text import Words, grams, jaccard, tokens_of

Problem = tuple[str, str]


class Turn(Words):
    """One message, with its lower-cased text and word tokens computed once."""

    __slots__ = ("_grams", "index", "role")

    def __init__(self, index: int, role: str, text: str) -> None:
        super().__init__(text)
        self.index = index
        self.role = role
        self._grams: set[tuple[str, ...]] | None = None

    @property
    def grams(self) -> set[tuple[str, ...]]:
        """Word 3-grams."""
        if self._grams is None:
            self._grams = grams(self.tokens, 3)
        return self._grams


# Every pattern starts with a literal, so Python's regex engine scans for it at C speed; word
# boundaries before a match are checked by :func:`_first` instead of a leading ``\b``.


def _first(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match of ``pattern`` in ``text`` that starts a word."""
    for m in pattern.finditer(text):
        s = m.start()
        if s == 0 or not text[s - 1].isalnum():
            return m
    return None


def _word_before(text: str, start: int) -> str:
    return text[max(0, start - 30) : start].rsplit(None, 1)[-1] if text[max(0, start - 30) : start].strip() else ""


# -- role confusion -----------------------------------------------------------------------------
_NARRATING_VERBS = (
    r"is|was|has|had|asks?|asked|wants?|needs?|says?|said|explains?|mentions?|feels?|describes?|"
    r"responds?|replies|replied|tells?|thinks?|shares?|writes?|follows?|pushes|insists?|clarifies|"
    r"would|will|then|now|expresses|continues|seems|believes|states?|requests?|wonders|adds|"
    r"reiterates|goes|gets|challenges|questions|repeats|acknowledges|provides|presses|argues|"
    r"admits|reveals|decides|tries|cites|claims|points|notes|persists|counters|begins|starts|"
    r"becomes|might|may|should|could|can|does|did|doesn't|isn't|appears|typed|types|sends|sent|"
    r"expects|demands|refuses|hopes|worries"
)
_USER_NARRATED = re.compile(r"user(?:'s)?(?:, [^,.!?]{1,40},)?\s+(?:" + _NARRATING_VERBS + r")\b")
#: What may come right before "user <verb>" for it to be narration: a sentence start or "the"/"this".
_NARRATION_START = re.compile(r"(?:(?:^|[.!?:;\n])\s*(?:(?:the|a|our|this) )?|(?:^|\W)(?:the|this) )$")
_FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself", "im"})
_THE_ASSISTANT = re.compile(r"the (?:assistant|ai|chatbot|bot|model)\b")
_NARRATES_AT = frozenset(
    ["asks", "asking", "tells", "telling", "thanks", "thanking", "reminds", "reminding", "challenges", "pushes", "pressures", "wants", "needs", "expects", "begs", "urges", "informs", "to"]
)
_ASSISTANT_SAID = re.compile(
    r"the (?:assistant|ai)(?:'s)? (?:said|suggested|recommended|claimed|responded|replied|previously|"
    r"earlier|gave|stated|mentioned|told)\b[^.!?]{0,80}\b(?:the user|they|he|she)\b"
)
_IN_THIS = re.compile(r"in this (?:scenario|conversation|role-?play),? (?:the )?user\b")

_ROLE_LABEL = re.compile(
    r"(?:user|assistant|you|human|ai|bot|chatbot|system|model|me|person|customer)(?: ?\d+)?(?:\*\*|__)? ?:(?!//)"
)
_LINE_LEAD = frozenset(" \t>*_#-")
#: A made-up speaker name opening the turn ("BRELL: You've been very gracious..."); names on later lines
#: are a script the user shows ("Here's my screenplay:\nMARA: You came back.").
_CAPS_LABEL = re.compile(r"\s*[*_#>-]*([A-Z][A-Z'-]{2,15})\s?:(?!//)")
#: Capitalised words a person may put before a colon themselves.
_NOT_SPEAKERS = frozenset(
    ["NOTE", "UPDATE", "EDIT", "EDITED", "PS", "FYI", "TLDR", "WARNING", "IMPORTANT", "QUESTION", "ANSWER", "CONTEXT", "BACKGROUND", "SUMMARY", "TODO", "URGENT", "ERROR", "DEBUG", "INFO", "WARN", "FAIL", "PASS", "OK", "HTTP", "HTTPS", "SQL", "API", "URL", "PDF", "CSV", "JSON", "YAML", "GPS", "ETA", "ASAP", "DISCLAIMER", "UPDATE2", "EDIT2", "SPOILER", "TRIGGER", "CW", "TW", "RE", "FW", "FWD", "ATTN", "SUBJECT", "FROM", "TO", "CC", "BCC"]
)
_ROLE_TAG = re.compile(r"\[(?:user|assistant|human|you)\]|<\|?(?:user|assistant)\|?>")
_ROLE_LABEL_INLINE = re.compile(r"(?:USER|ASSISTANT|HUMAN) ?:")

_AS_USER_SEAT = re.compile(r"as (?:the|a) user\b|i(?:'m| am) the user\b")
_AS_USER_THANKS = re.compile(
    r"(?:thank you|thanks)(?: so much| very much| a lot)? for (?:your|the|all (?:your|the)) "
    r"(?:help|advice|explanation|information|assistance|answer|support|time|reply|response)"
    r"|appreciate (?:your|the) (?:help|advice|explanation|assistance|answer)"
)
_AS_USER_ASKS = re.compile(
    r"you (?:please )?(?:help me|explain to me|check (?:this|my)|look at my|confirm (?:that|this|my|it))\b"
)
_AS_USER_WHAT_DO_I = re.compile(r"what (?:should|can|do) i (?:do|change|try|say|use|take|buy|pick|choose)\b")
_ASKING_VERBS = frozenset({"can", "could", "would", "will"})
_AS_USER_SITUATION = re.compile(
    r"my (?:son|daughter|toddler|kid|kids|child|children|mom|mother|dad|father|wife|husband|partner|"
    r"boss|landlord|doctor|teacher|professor|manager|coworker|roommate|grandma|grandmother|grandpa|"
    r"grandfather|baby|therapist|lawyer|advisor|supervisor|tenant|thesis|dissertation|rent|lease|"
    r"mortgage|prescription|symptoms|fever|headache|chest pain|landlady|employer|exam|exams|shift)\b"
)
_AS_USER_WORRY = re.compile(r"(?:worried|scared|confused|anxious|nervous|stressed) about my\b")

_USER_HELPS = re.compile(
    r"i(?:'d| would) (?:love|be (?:happy|glad)) to help|i(?:'m| am) (?:here|happy|glad) to (?:help|assist)"
    r"|how (?:can|may) i (?:help|assist) you|is there anything else i can|as an ai\b|ai language model"
    r"|i(?:'m| am) (?:so |very |really |truly )?sorry to hear (?:about|that) your|i(?:'ll| will) be your [a-z]+"
    r"|i (?:completely |totally |fully )?understand how (?:challenging|difficult|hard|stressful|frustrating|overwhelming|tough)"
    r"|thank you for (?:reaching out|sharing this with me|your question)"
)
_PERSONA_LINE = re.compile(r"you(?: are|'re|’re) an? ")
_USER_HELPS_WORDS = frozenset({"help", "assist", "ai", "sorry", "understand", "thank"})

# -- leftovers ----------------------------------------------------------------------------------
_BRACKETED = re.compile(r"\[([^\[\]\n]{1,60})\](?!\()")
_ANGLED = re.compile(r"<([a-z][a-z _]{1,30})>")
_FILL_IN_WORDS = frozenset(
    ["your", "insert", "enter", "add", "name", "url", "link", "website", "company", "organization", "date", "time", "address", "phone", "email", "number", "city", "state", "country", "location", "product", "amount", "price", "title", "doctor", "hospital", "school", "university", "drug", "medication", "dose", "age", "x", "xx", "placeholder", "person", "recipient", "sender", "client", "employer", "bank", "landlord", "job", "position", "topic", "course", "citation", "reference", "source", "author", "journal", "study", "year", "value", "specific", "relevant", "first", "last", "full"]
)
_TITLE_WORDS = re.compile(r"[A-Z][A-Za-z']*(?: [A-Za-z][A-Za-z']*){0,4}")
_NOT_FILL_IN = frozenset({"i", "a", "b", "c", "sic", "edit", "edited", "update", "citation needed", "emphasis added", "emphasis mine", "sic!"})
_ANGLED_FILL_IN = frozenset(
    ["name", "url", "link", "date", "company", "email", "phone", "address", "number", "placeholder", "city", "product", "amount"]
)
_NUMBERED_NAME = re.compile(r"[A-Z][A-Za-z]{2,}\d+")
_UPPER_FILL_IN = re.compile(r"XX+\b|TBD\b|INSERT [A-Z]{2,}")
_LOWER_FILL_IN = re.compile(r"xxx+\b|____+")

_TEMPLATE_MARK = re.compile(r"[{}][{%#]|[%#]\}|\{[a-z_][a-z0-9_]{0,30}\}|<\|[a-z_]+\|>|</?s>|\[/?inst\]")
_SECTION_LABEL = re.compile(r"[A-Z][A-Z ]{2,12}:")
_SECTION_LABELS = frozenset(
    f"{label}:" for label in ("SITUATION", "TRAP", "GOAL", "FACTS", "KEY FACTS", "USER GOAL", "PERSONA", "ESCALATION", "BRIEF")
)
_HERE_IS = re.compile(
    r"here(?:'s| is) (?:your|the|my|a|an) (?:next |first |follow-up |revised |possible |final )?"
    r"(?:message|reply|response|turn|user(?:'s)? (?:message|reply|turn)|assistant(?:'s)? (?:message|reply))\b"
)
_NEXT_MESSAGE = re.compile(r"(?:next|first) (?:user|assistant) (?:message|turn|reply) ?:")
_SURE_HERE = re.compile(r"(?:sure|certainly|of course|okay|ok|absolutely)[!,.]? here(?:'s| is)\b")
_PERSON_NEXT = re.compile(r"the (?:user|person)'s (?:next|first) (?:message|turn|reply)\b")
_WRITE_THE = re.compile(
    r"writ(?:e|ing) (?:the|your|only the|only that) (?:user|person|assistant)(?:'s)? (?:next |first )?(?:message|turn|reply)"
    r"|write your (?:first|next) message\b"
)
_NOTE = re.compile(r"\(note:|\[note:|note: (?:this|the) (?:message|reply|response|turn)\b")
#: Instructions from our own prompts (prompts/*.j2), grouped by a key word that must be present.
_ECHOED = {
    "reply": ("answer with the reply only", "never write the assistant's reply", "reply to the last user message"),
    "sentences": ("one to three sentences", "two to four sentences", "two to four complete sentences"),
    "labels": ("sentences, no labels",),
    "person": ("first person, one", "you role-play a person", "you roleplay a person", "as the person, not the assistant"),
    "far": ("conversation so far:",),
    "number": ("answer with one number",),
    "lorem": ("lorem ipsum",),
    "continue": ("you continue the conversation", "continue the conversation as", "continue continuing this conversation"),
    "instructions": ("here are the instructions for you",),
    "continuation": ("here's a possible continuation", "here is a possible continuation", "continuation of your text"),
    "conversation": ("how this conversation could be", "message to the assistant"),
    "requested": ("here is the response as requested", "here's the response as requested"),
    "note": ("note to the user", "(note: replace"),
    "sentence": ("just the next sentence", "one-sentence response:"),
    # assistant_turn.j2: "Write the ASSISTANT REPLY to the last user message: brief and reasonable, ..."
    "reasonable": ("brief and reasonable",),
    "version": ("version of the assistant response", "version of the assistant reply"),
}
_ECHO_WORDS = frozenset(_ECHOED)
#: Word gates: a detector's patterns only run on a turn holding one of these words.
_ASSISTANT_WORDS = frozenset({"assistant", "ai", "bot", "chatbot", "model"})
_THANKS_WORDS = frozenset({"thank", "thanks", "appreciate"})
_AS_USER_WORDS = frozenset({"user", "thank", "thanks", "appreciate", "me", "my", "what"})
#: Code spans and quotations: template marks and fill-ins inside them are the user's subject matter
#: (a Jinja line they ask about, a lease template they quote), not leftovers.
_CODE_SPAN = re.compile(r"`[^`]*`")
_QUOTED = re.compile(r'"[^"\n]{0,300}"|“[^”\n]{0,300}”')
_F_STRING = re.compile(r"\bf[\"'][^\"'\n]*$")
#: Bracketed words that are keys, buttons or editorial marks rather than fill-ins.
_KEYS = frozenset(
    ["enter", "return", "esc", "escape", "tab", "shift", "ctrl", "control", "alt", "option", "cmd", "command", "space", "spacebar", "backspace", "delete", "del", "home", "end", "pgup", "pgdn", "up", "down", "left", "right", "ok", "cancel", "yes", "no", "submit", "save", "send", "next", "back", "continue"]
)

# -- truncation ---------------------------------------------------------------------------------
_END_OK = frozenset(".!?\"')]}*`…”’»>:;😊🙏")
_DANGLING = frozenset(
    ["a", "an", "the", "and", "or", "but", "to", "of", "in", "on", "at", "by", "for", "with", "from", "into", "about", "as", "is", "are", "was", "were", "be", "been", "my", "your", "his", "her", "their", "our", "its", "this", "that", "these", "those", "than", "then", "if", "so", "because", "which", "who", "whom", "whose", "when", "where", "while", "although", "though", "since", "until", "unless", "very", "more", "most", "some", "any", "no", "not", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "do", "does", "did", "have", "has", "had", "i", "we", "you", "they", "he", "she", "it", "me", "us", "them", "just", "also", "such", "what", "how", "why", "like", "whether"]
)

# -- repetition ---------------------------------------------------------------------------------
REPEAT_JACCARD = 0.6
REPEAT_WORDS_JACCARD = 0.75
REPEAT_CONTAINED = 0.8
UNPUNCTUATED_WORDS = 12
COPY_CONTAINMENT = 0.6
LOOP_UNIQUE_SHARE = 0.4


def third_person(turn: Turn) -> Problem | None:
    """A user turn narrating the scenario ("The user is a nurse who...", "She asks the assistant...")."""
    words = turn.words
    if "user" not in words and _ASSISTANT_WORDS.isdisjoint(words):
        return None
    low = turn.low
    m = None
    if "user" in words:
        for hit in _USER_NARRATED.finditer(low):
            start = hit.start()
            if (
                (start == 0 or not low[start - 1].isalnum())
                and _NARRATION_START.search(low[max(0, start - 12) : start])
                and not _speaks_in_first_person(low, start)
            ):
                m = hit
                break
        m = m or _first(_IN_THIS, low)
    if m is None and not _ASSISTANT_WORDS.isdisjoint(words):
        for hit in _THE_ASSISTANT.finditer(low):
            if _word_before(low, hit.start()) in _NARRATES_AT:
                m = hit
                break
        m = m or _first(_ASSISTANT_SAID, low)
    return ("third_person_user", f"narrates about the user: {_quote(turn.text, m)}") if m else None


def _speaks_in_first_person(low: str, at: int) -> bool:
    """Whether the sentence around ``at`` has I/me/my: "This user has been harassing me" is a person
    talking about a user of their platform, not narration."""
    begin = max(low.rfind(".", 0, at), low.rfind("?", 0, at), low.rfind("!", 0, at), low.rfind("\n", 0, at)) + 1
    ends = [e for e in (low.find(".", at), low.find("?", at), low.find("!", at), low.find("\n", at)) if e >= 0]
    return not _FIRST_PERSON.isdisjoint(tokens_of(low[begin : min(ends) if ends else len(low)]))


def role_label(turn: Turn) -> Problem | None:
    """Speaker labels at a line start ("User:", "**Assistant:**") or chat tags ("[user]", "<|assistant|>")."""
    text = turn.text
    if ":" in text:
        low = turn.low
        for hit in _ROLE_LABEL.finditer(low):
            start = hit.start()
            line_start = low.rfind("\n", 0, start) + 1
            if all(c in _LINE_LEAD for c in low[line_start:start]):
                return "role_label", f"role label {_quote(text, hit)}"
        if "USER" in text or "ASSISTANT" in text or "HUMAN" in text:
            m = _first(_ROLE_LABEL_INLINE, text)
            if m:
                return "role_label", f"role label {_quote(text, m)}"
        hit = _CAPS_LABEL.match(text)
        if hit and hit.group(1).replace("'", "").replace("-", "") not in _NOT_SPEAKERS:
            return "role_label", f"speaker label {_quote(text, hit)}"
    if "[" in text or "<" in text:
        m = _ROLE_TAG.search(turn.low)
        if m:
            return "role_label", f"role tag {_quote(text, m)}"
    return None


def assistant_as_user(turn: Turn) -> Problem | None:
    """An assistant turn written from the user's seat: thanks for the help, asks for help, "my son"."""
    words = turn.words
    if _AS_USER_WORDS.isdisjoint(words):
        return None
    low = turn.low
    m = None
    if "user" in words:
        m = _first(_AS_USER_SEAT, low)
    if m is None and not _THANKS_WORDS.isdisjoint(words):
        m = _first(_AS_USER_THANKS, low)
    if m is None and "you" in words and "me" in words:
        for hit in _AS_USER_ASKS.finditer(low):
            if _word_before(low, hit.start()) in _ASKING_VERBS:
                m = hit
                break
    if m is None and "my" in words:
        m = _first(_AS_USER_SITUATION, low) or _first(_AS_USER_WORRY, low)
    if m is None and "what" in words and "i" in words:
        m = _first(_AS_USER_WHAT_DO_I, low)
    return ("assistant_as_user", f"speaks as the user: {_quote(turn.text, m)}") if m else None


def persona_echo(turn: Turn) -> Problem | None:
    """A user turn addressed to the person it plays, echoing our prompt's persona line ("You are a
    mom who...", "You're a seasoned journalist..."): a statement of six words or more."""
    low = turn.low
    if "you are a" not in low and "you're a" not in low and "you’re a" not in low:
        return None
    for hit in _PERSONA_LINE.finditer(low):
        start = hit.start()
        if start and low[start - 1] not in " \n" or start > 1 and low[:start].rstrip()[-1:] not in ".!?\n\"":
            continue
        end = min([e for e in (low.find(".", start), low.find("?", start), low.find("!", start), low.find("\n", start)) if e >= 0] or [len(low)])
        if end < len(low) and low[end] == "?":
            continue
        if low[start:end].count(" ") >= 5:
            return "template_fragment", f"echoes our persona line: {_quote(turn.text, hit)}"
    return None


def user_as_assistant(turn: Turn) -> Problem | None:
    """A user turn written from the assistant's seat: offers help, consoles, "I'll be your officer today"."""
    if _USER_HELPS_WORDS.isdisjoint(turn.words) and "be your" not in turn.low:
        return None
    m = _first(_USER_HELPS, turn.low)
    return ("user_as_assistant", f"speaks as the assistant: {_quote(turn.text, m)}") if m else None


def _fill_in(inner: str) -> bool:
    """Whether the text between brackets is a fill-in ("Your Name", "insert date", "Company").

    >>> [_fill_in(x) for x in ("Your Name", "URL", "insert medication name", "Enter", "sic", "1", "Company")]
    [True, True, True, False, False, False, True]
    >>> [_fill_in(x) for x in ("TheParent1", "B12", "0, 1")]
    [True, False, False]
    """
    low = inner.lower().strip()
    if low in _NOT_FILL_IN or low in _KEYS or not any(c.isalpha() for c in low):
        return False
    first = low.split(None, 1)[0].strip(".:,")
    if first in _FILL_IN_WORDS or low.startswith(("the ", "a ", "an ")) and len(low.split()) <= 4:
        return True
    if _NUMBERED_NAME.fullmatch(inner.strip()):  # "[TheParent1]", "[Name2]": a numbered slot
        return True
    return bool(_TITLE_WORDS.fullmatch(inner.strip())) and len(inner.strip()) > 1


def placeholder(turn: Turn) -> Problem | None:
    """A fill-in left in: ``[Your Name]``, ``[URL]``, ``[insert X]``, ``<name>``, ``XXX``, ``____``."""
    text = turn.text
    if "[" in text:
        for m in _BRACKETED.finditer(text):
            if _fill_in(m.group(1)) and not _inside(_QUOTED, text, m.start()):
                return "placeholder", f"fill-in left in: {_quote(text, m)}"
    if "<" in text:
        for m in _ANGLED.finditer(turn.low):
            inner = m.group(1)
            if inner in _ANGLED_FILL_IN or inner.startswith(("your ", "insert ")) or "_" in inner:
                return "placeholder", f"fill-in left in: {_quote(text, m)}"
    if "XX" in text or "TBD" in text or "INSERT" in text:
        m = _first(_UPPER_FILL_IN, text)
        if m:
            return "placeholder", f"fill-in left in: {_quote(text, m)}"
    if "xxx" in turn.low or "____" in text:
        m = _first(_LOWER_FILL_IN, turn.low)
        if m:
            return "placeholder", f"fill-in left in: {_quote(text, m)}"
    return None


def template_fragment(turn: Turn) -> Problem | None:
    """Template residue, generator scaffolding, or our own prompts' instructions echoed back."""
    low = turn.low
    m = None
    if "{" in low or "}" in low or "<" in low or "[" in low:
        marks = _CODE_SPAN.sub(_blank, low) if "`" in low else low
        for hit in _TEMPLATE_MARK.finditer(marks):
            if hit.group(0)[0] == "{" and hit.group(0)[1] not in "{%#" and _F_STRING.search(marks, 0, hit.start()):
                continue  # a Python f-string's field, in code the user shows
            m = hit
            break
    words = turn.words
    if m is None and ":" in low:
        for hit in _SECTION_LABEL.finditer(turn.text):
            if hit.group(0) in _SECTION_LABELS:
                m = hit
                break
        if m is None and ("next" in words or "first" in words):
            m = _first(_NEXT_MESSAGE, low)
        if m is None and "note" in words:
            m = _NOTE.search(low)
    if m is None and "here" in words:
        m = _first(_HERE_IS, low) or _SURE_HERE.match(low, len(low) - len(low.lstrip()))
    if m is None and ("next" in words or "first" in words) and "s" in words:
        m = _first(_PERSON_NEXT, low)
    if m is None and ("write" in words or "writing" in words):
        m = _first(_WRITE_THE, low)
    if m is None:
        if _ECHO_WORDS.isdisjoint(words):
            return None
        for key, phrases in _ECHOED.items():
            if key in words:
                for phrase in phrases:
                    if phrase in low:
                        at = low.index(phrase)
                        return "template_fragment", f"echoes our prompt: {_quote(turn.text[at : at + len(phrase)], None)}"
        return None
    return "template_fragment", f"template fragment {_quote(turn.text, m)}"


def truncated(turn: Turn) -> Problem | None:
    """The final user turn stops mid-sentence: a dangling comma, hyphen or function word, or a
    long turn (:data:`UNPUNCTUATED_WORDS` words or more) without closing punctuation, which in
    generated text means the token limit cut it (often mid-word: "...I should put ev").

    >>> truncated(Turn(0, "user", "Can you check the dose for my"))[0]
    'truncated_final_turn'
    >>> truncated(Turn(0, "user", "can you check the dose please")) is None
    True
    """
    stripped = turn.text.rstrip()
    if not stripped:
        return None
    last = stripped[-1]
    if last in _END_OK or last.isdigit():
        return None
    if last in ",-–—(/&+=":
        return "truncated_final_turn", f"ends with {stripped[-30:]!r}"
    if not last.isalpha() or not turn.tokens:
        return None
    if turn.tokens[-1] in _DANGLING:
        return "truncated_final_turn", f"ends mid-sentence: {stripped[-30:]!r}"
    if len(turn.tokens) >= UNPUNCTUATED_WORDS:
        return "truncated_final_turn", f"{len(turn.tokens)} words and no closing punctuation: {stripped[-30:]!r}"
    return None


def self_repetition(turn: Turn) -> Problem | None:
    """A turn that loops: a sentence said twice, or most of its words repeating.

    >>> self_repetition(Turn(0, "user", "I need help with this now. " * 4))[0]
    'self_repetition'
    >>> self_repetition(Turn(0, "user", "I need help. My dad needs help too.")) is None
    True
    """
    tokens = turn.tokens
    if len(tokens) < 8:
        return None
    parts = turn.low.replace("!", ".").replace("?", ".").replace("\n", ".").split(".")
    if len(parts) > 2:
        sentences = [x.strip() for x in parts if x.count(" ") >= 4]
        if len(set(sentences)) < len(sentences):
            again = next(x for i, x in enumerate(sentences) if x in sentences[:i])
            return "self_repetition", f"says twice: {again[:60]!r}"
    if len(tokens) >= 20 and len(turn.words) / len(tokens) < LOOP_UNIQUE_SHARE:
        return "self_repetition", f"{len(turn.words)} distinct words in {len(tokens)}"
    return None


def repeats_earlier(turn: Turn, earlier: list[Turn]) -> tuple[int, float] | None:
    """The earlier turn this one repeats: the same words (word-set Jaccard >= REPEAT_WORDS_JACCARD at a
    similar length), or the same phrasing (3-gram Jaccard >= REPEAT_JACCARD)."""
    tokens = turn.tokens
    for other in earlier:
        if tokens == other.tokens and tokens:
            return other.index, 1.0
        if len(tokens) < 6 or len(other.tokens) < 6:
            continue
        # the same words (a few edits apart), or the same phrasing
        words = jaccard(turn.words, other.words)
        if words >= REPEAT_WORDS_JACCARD and 0.75 <= len(tokens) / len(other.tokens) <= 1.33:
            return other.index, words
        if words < REPEAT_JACCARD * 0.8:
            continue
        sim = jaccard(turn.grams, other.grams)
        if sim >= REPEAT_JACCARD:
            return other.index, sim
        # a shorter turn that is (nearly) a piece of an earlier one: "Thank you for your kind words, ..." again
        if len(turn.grams) >= 8:
            inside = len(turn.grams & other.grams) / len(turn.grams)
            if inside >= REPEAT_CONTAINED:
                return other.index, inside
    return None


def copies_user(turn: Turn, user: Turn) -> float | None:
    """Share of the user turn's 3-grams the assistant turn repeats, verbatim or with the first person
    swapped to the second ("my students" -> "your students"), when at least COPY_CONTAINMENT."""
    if len(user.tokens) < 7:
        return None
    best = _containment(user.words, user.grams, turn)
    # the person-swapped copy ("my students" -> "your students"), when the other words already match
    if (
        best < COPY_CONTAINMENT
        and not _SWAP_WORDS.isdisjoint(user.words)
        and len((user.words - _SWAP_WORDS) & turn.words) + 3 >= COPY_CONTAINMENT * len(user.words)
    ):
        swapped = [_SWAP.get(w, w) for w in user.tokens]
        best = max(best, _containment(set(swapped), grams(swapped, 3), turn))
    return best if best >= COPY_CONTAINMENT else None


def _containment(words: set[str], user_grams: set[tuple[str, ...]], turn: Turn) -> float:
    """Share of the user's 3-grams found in ``turn`` (0 when their words already differ too much)."""
    if len(words & turn.words) < COPY_CONTAINMENT * len(words):
        return 0.0
    return len(user_grams & turn.grams) / len(user_grams)


_SWAP = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "am": "are", "we": "you",
         "our": "your", "us": "you"}
_SWAP_WORDS = frozenset(_SWAP)


def _blank(m: re.Match[str]) -> str:
    return " " * len(m.group(0))


def _inside(pattern: re.Pattern[str], text: str, at: int) -> bool:
    """Whether position ``at`` of ``text`` lies inside a span ``pattern`` matches."""
    return any(s.start() < at < s.end() for s in pattern.finditer(text))


def _quote(text: str, m: re.Match[str] | None, limit: int = 60) -> str:
    found = text[m.start() : m.end()] if m is not None else text
    found = " ".join(found.split())
    return '"' + (found if len(found) <= limit else found[: limit - 1] + "…") + '"'
