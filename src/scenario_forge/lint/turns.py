"""Turn-level detectors: role confusion, leftovers, repetition and truncation.

Each detector looks at one :class:`Turn` (and, for repetition, the turns before it) and returns a
``(code, detail)`` pair or ``None``. Patterns are compiled once at import and only run when a cheap
substring test says they could match, so most turns cost a few microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Final

from .text import _PUNCT, Words, grams, jaccard, tokens_of

Problem = tuple[str, str]


class Turn(Words):
    """One message, with its lower-cased text and word tokens computed once."""

    __slots__ = ("_grams", "index", "role")

    def __init__(self, index: int, role: str, text: str) -> None:
        # Words.__init__, inlined (one Turn per message: the hottest constructor of lint)
        self.text = text
        self.low = low = text.lower()
        self.tokens = tokens = low.encode().translate(_PUNCT).decode().split() if low.isascii() else tokens_of(low)
        self.words = set(tokens)
        self._stems = None
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
_NARRATING_VERBS: Final = (
    r"is|was|has|had|asks?|asked|wants?|needs?|says?|said|explains?|mentions?|feels?|describes?|"
    r"responds?|replies|replied|tells?|thinks?|shares?|writes?|follows?|pushes|insists?|clarifies|"
    r"would|will|then|now|expresses|continues|seems|believes|states?|requests?|wonders|adds|"
    r"reiterates|goes|gets|challenges|questions|repeats|acknowledges|provides|presses|argues|"
    r"admits|reveals|decides|tries|cites|claims|points|notes|persists|counters|begins|starts|"
    r"becomes|might|may|should|could|can|does|did|doesn't|isn't|appears|typed|types|sends|sent|"
    r"expects|demands|refuses|hopes|worries|mentioned|explained|described|shared|expressed"
)
#: "The user is...", "The user, a nurse, asks...", and the fragment "The user, who is a concerned student..."
_USER_NARRATED: Final = re.compile(r"user(?:'s)?(?:, [^,.!?]{1,40},|, who)?\s+(?:" + _NARRATING_VERBS + r")\b")
#: What may come right before "user <verb>" for it to be narration: a sentence start or "the"/"this".
_NARRATION_START: Final = re.compile(r"(?:(?:^|[.!?:;\n])\s*(?:(?:the|a|our|this) )?|(?:^|\W)(?:the|this) )$")
_FIRST_PERSON: Final = frozenset({"i", "me", "my", "mine", "myself", "im"})
_THE_ASSISTANT: Final = re.compile(r"the (?:assistant|ai|chatbot|bot|model)\b")
_NARRATES_AT: Final = frozenset(
    ["asks", "asking", "tells", "telling", "thanks", "thanking", "reminds", "reminding", "challenges", "pushes", "pressures", "wants", "needs", "expects", "begs", "urges", "informs", "to"]
)
_ASSISTANT_SAID: Final = re.compile(
    r"the (?:assistant|ai)(?:'s)? (?:said|suggested|recommended|claimed|responded|replied|previously|"
    r"earlier|gave|stated|mentioned|told)\b[^.!?]{0,80}\b(?:the user|they|he|she)\b"
)
#: The assistant as a third party in the conversation it is in ("I agree with the assistant.", "the explanation
#: from the assistant seems to be incorrect"): what the capable path's 1.5B model wrote on 2026-12-02. Looked
#: for around each "the assistant" (what comes before it, then what follows it): only "assistant", and only
#: before the end of a clause or one of these words, so a person's "assistant manager" is spared.
_ABOUT_BEFORE: Final = re.compile(
    r"(?<![a-z])(?:(?:dis)?agreed? with|(?:answer|explanation|response|reply|advice|suggestion)s? (?:from|by|of|given by)) $"
)
_ABOUT_AFTER: Final = re.compile(
    r"[.,;:!?]|\s+(?:that|on|about|here|completely|entirely|fully|and|but|seems?|was|were|is|are|says|said|suggests|which)\b|\s*$"
)
_IN_THIS: Final = re.compile(r"in this (?:scenario|conversation|role-?play),? (?:the )?user\b")
#: Our brief narrated to the persona: "They want the assistant to consider...", "You want the assistant to help".
_WANTS_THE_ASSISTANT: Final = re.compile(
    r"(?:they|he|she|you)(?: really| also| just)? (?:want|wants|wanted|need|needs|needed|expect|expects|"
    r"would like|'d like) the (?:assistant|ai|chatbot)\b"
)

_ROLE_LABEL: Final = re.compile(
    r"(?:user|assistant|you|human|ai|bot|chatbot|system|model|me|person|customer|the (?:user|assistant|ai(?: assistant)?|bot|chatbot))"
    r"(?: ?\d+)?(?:\*\*|__)? ?:(?!//)"
)
#: A transcript's heading opening the turn ("Dialogue: The assistant has approached you...", "Chat History:
#: You're not just another chatty player...", "Chat: You're looking at my laptop screen"). "Transcript:"
#: and "Chat log:" are left out: a person may open by pasting one to ask about it.
_TRANSCRIPT_LABEL: Final = re.compile(r"\s*[*_#>-]*(?:chat history|chat|dialogue|dialog)\s?:(?!//)")
_LINE_LEAD: Final = frozenset(" \t>*_#-")
#: A made-up speaker name opening the turn ("BRELL: You've been very gracious..."); names on later lines
#: are a script the user shows ("Here's my screenplay:\nMARA: You came back.").
_CAPS_LABEL: Final = re.compile(r"\s*[*_#>-]*([A-Z][A-Z'-]{2,15})\s?:(?!//)")
#: Capitalised words a person may put before a colon themselves.
_NOT_SPEAKERS: Final = frozenset(
    ["NOTE", "UPDATE", "EDIT", "EDITED", "PS", "FYI", "TLDR", "WARNING", "IMPORTANT", "QUESTION", "ANSWER", "CONTEXT", "BACKGROUND", "SUMMARY", "TODO", "URGENT", "ERROR", "DEBUG", "INFO", "WARN", "FAIL", "PASS", "OK", "HTTP", "HTTPS", "SQL", "API", "URL", "PDF", "CSV", "JSON", "YAML", "GPS", "ETA", "ASAP", "DISCLAIMER", "UPDATE2", "EDIT2", "SPOILER", "TRIGGER", "CW", "TW", "RE", "FW", "FWD", "ATTN", "SUBJECT", "FROM", "TO", "CC", "BCC"]
)
_ROLE_TAG: Final = re.compile(r"\[(?:user|assistant|human|you)\]|<\|?(?:user|assistant)\|?>")
_ROLE_LABEL_INLINE: Final = re.compile(r"(?:USER|ASSISTANT|HUMAN) ?:")
#: A speaker label after a sentence in the middle of a line, opening a spoken line ("...clears it up. The
#: user: I'm still not sure..."); a login field ("...on the box. User: admin, password: ...") is spared.
_ROLE_LABEL_MIDLINE: Final = re.compile(
    r"[.!?\"”)] +(?:the )?(?:user|assistant|human) ?: *[\"“]?(?:i|i'm|i've|i'd|i'll|im|thank|thanks|you|yes|no|okay|ok|"
    r"sure|well|hi|hello|that|this|please|can|could|what|how|why|so|but|and|my|we|it's|great|absolutely|of course)\b"
)

_AS_USER_SEAT: Final = re.compile(r"as (?:the|a) user\b|i(?:'m| am) the user\b")
_AS_USER_THANKS: Final = re.compile(
    r"(?:thank you|thanks)(?: so much| very much| a lot)? for (?:your|the|all (?:your|the)) "
    r"(?:help|advice|explanation|information|assistance|answer|support|time|reply|response)"
    r"|appreciate (?:your|the) (?:help|advice|explanation|assistance|answer)"
)
_AS_USER_ASKS: Final = re.compile(
    r"you (?:please )?(?:help me|explain to me|check (?:this|my)|look at my|confirm (?:that|this|my|it))\b"
)
_AS_USER_WHAT_DO_I: Final = re.compile(r"what (?:should|can|do) i (?:do|change|try|say|use|take|buy|pick|choose)\b")
_ASKING_VERBS: Final = frozenset({"can", "could", "would", "will"})
_AS_USER_SITUATION: Final = re.compile(
    r"my (?:son|daughter|toddler|kid|kids|child|children|mom|mother|dad|father|wife|husband|partner|"
    r"boss|landlord|doctor|teacher|professor|manager|coworker|roommate|grandma|grandmother|grandpa|"
    r"grandfather|baby|therapist|lawyer|advisor|supervisor|tenant|thesis|dissertation|rent|lease|"
    r"mortgage|prescription|symptoms|fever|headache|chest pain|landlady|employer|exam|exams|shift)\b"
)
_AS_USER_WORRY: Final = re.compile(r"(?:worried|scared|confused|anxious|nervous|stressed) about my\b")

_USER_HELPS: Final = re.compile(
    r"i(?:'d|'ll| would| will) (?:love|be (?:happy|glad)) to help|i(?:'m| am) (?:here|happy|glad) to (?:help|assist)"
    r"|how (?:can|may) i (?:help|assist) you|is there anything else i can|as an ai\b|ai language model"
    r"|i(?:'m| am) (?:so |very |really |truly )?sorry to hear (?:about|that) your|i(?:'ll| will) be your [a-z]+"
    r"|sorry to hear (?:about |that )?(?:the |all )?(?:[a-z]+ ){0,2}you(?:'re| are) (?:going through|dealing with|facing|struggling)"
    r"|i (?:completely |totally |fully )?understand how (?:challenging|difficult|hard|stressful|frustrating|overwhelming|tough)"
    r"|thank you for (?:reaching out|sharing this with me|your question)"
)
#: More of the helper's lines a small model puts in the user's mouth ("I'm all set to help.", "I'm thrilled to
#: support you", "I'm so sorry for your family's situation", "you've come to the right place"); a match
#: inside quotation marks is a draft the user shows ("...Please don't hesitate to reach out."), not theirs.
#: Each with the words a turn must hold (any of the first set, all of the second) before it runs.
_USER_HELPS_MORE: tuple[tuple[frozenset[str], frozenset[str], re.Pattern[str]], ...] = (
    (frozenset({"help", "assist", "support", "assistance", "guidance"}), frozenset({"i"}), re.compile(
        r"i(?:'m| am) (?:all set|ready|here(?: today| now)?|(?:so |very |really |more than )?(?:happy|glad|thrilled|delighted|excited|eager))"
        r" to (?:help|assist|support|provide (?:you with )?(?:assistance|support|help|guidance))(?: you\b| out\b| with your\b| on\b|[.!,;]|$)")),
    (frozenset({"sorry"}), frozenset({"i", "your"}), re.compile(r"i(?:'m| am) (?:so |very |really |truly )?sorry (?:for|about) your\b")),
    (frozenset({"glad"}), frozenset({"you"}), re.compile(
        r"glad (?:to hear (?:that )?you(?:'re| are) (?:on the right track|taking|doing (?:well|better|great)|feeling better|"
        r"making progress|interested|excited|enjoying)|you (?:reached out|got in touch|asked)\b)")),
    (frozenset({"place"}), frozenset({"you", "come", "right"}), re.compile(r"you(?:'ve| have) come to the right place")),
    # a receptionist's greeting, which the 2026-12-02 main job put in a first user turn
    (frozenset({"brings"}), frozenset({"what", "you"}), re.compile(r"what brings you (?:here|in|to (?:me|us|our [a-z]+))(?: today)?\b")),
    (frozenset({"hesitate"}), frozenset(), re.compile(r"(?:don't|do not) hesitate to (?:reach out|ask|contact me|get in touch)")),
    # "I'm going to help you with your treatment", "I'll help you through this", "let me help you with your plan"
    (frozenset({"help"}), frozenset({"you"}), re.compile(
        r"(?:i(?:'m| am) going to|i(?:'ll| will)(?: do my best to)?|let me) help you"
        r"(?: (?:with|through|manage|cope with|get through) (?:your|this|all of this|it all)\b|[.!;]|$)")),
    # "I'm so glad to be of service", "it's my pleasure to support you" (the 2026-12-02 main job's user turns)
    (frozenset({"service", "pleasure"}), frozenset(), re.compile(
        r"(?:glad|happy|pleased|delighted) to be of (?:service|help|assistance)(?: to you\b|[.!,;]|$)|(?:it['’]s|it is) (?:my|a) pleasure to (?:help|support|assist|serve) you\b")),
    (frozenset({"happy", "glad", "thrilled", "honored", "honoured"}), frozenset({"be", "your"}),
     re.compile(r"(?:happy|glad|thrilled|honou?red) to be your (?:assistant|guide|helper|coach|advisor)\b")),
)
_PERSONA_LINE: Final = re.compile(r"you(?: are|'re|’re) an? ")
#: Words after which an "-ing" word is a gerund ("a parent for asking"), not a persona's participle.
_BEFORE_GERUND: Final = frozenset(
    ["a", "an", "the", "for", "by", "about", "of", "at", "in", "on", "from", "without", "with", "when", "while", "after", "before", "into", "is", "are", "re", "worth", "keep", "keeps", "start", "starts", "stop", "stops", "like", "love", "enjoy", "mind", "avoid", "not", "no", "and", "or", "thing", "everything", "anything", "something", "nothing", "good", "great", "amazing"]
)
#: Words that open a participle's object or complement ("checking *a* drip rate", "waiting *for* news").
_PARTICIPLE_OBJECT: Final = frozenset(
    ["a", "an", "the", "your", "his", "her", "their", "my", "our", "this", "that", "these", "those", "some", "two", "three", "for", "on", "at", "in", "with", "to", "up", "out", "through", "about", "after", "into", "over", "from"]
)
#: Words of an assistant going on to advise after "You are a legal adult...": no persona recital.
_ADVISING: Final = frozenset(
    {"so", "which", "therefore", "means", "but", "because", "since", "entitled", "allowed", "right", "rights", "can", "may", "should",
     "own", "choice", "choices", "decision", "decisions"}
)
#: Scene narration to the persona: "You're sitting in the recovery room", "You find yourself in...".
_SCENE: Final = re.compile(
    r"you(?:'re|’re| are) (?:now |still |currently |just |already )?(?:sitting|standing|lying|staring|kneeling|pacing|"
    r"seated|perched|huddled|slumped|walking (?:into|through|down|along|across|out)|waiting (?:in|at|by|outside|for (?:your|the|a))|"
    r"holding (?:your|a|the|her|his)|watching (?:your|a|the|her|his)|looking (?:down at|out at|out of))\b"
    r"|you (?:sit|stand|kneel|wake up|walk into|step into|find yourself|stare at|look down at|lie) "
)
_SCENE_WORDS: Final = frozenset(
    ["sitting", "standing", "lying", "staring", "kneeling", "pacing", "seated", "perched", "huddled", "slumped", "walking", "waiting", "holding", "watching", "looking", "sit", "stand", "kneel", "wake", "walk", "step", "find", "stare", "look", "lie"]
)
#: A piece of text every match of :data:`_USER_HELPS` holds (one per alternative): checked before it runs.
#: A later user turn's one reply to nothing (:func:`reacts_to_nothing`), after an assistant turn that asked no question.
_GREAT_QUESTION: Final = re.compile(r"(?:that['’]s|that is|what) (?:a |such a )?(?:great|good|wonderful|excellent) question")
#: The first user turn opening with a reply to a message nobody sent ("I'm so sorry to hear about that.",
#: "I'm so glad you're here", "That's a great question", "it's wonderful to hear from you"): the helper's
#: lines, in the user's first message. Looked for in its first :data:`_OPENING_CHARS` characters.
_REACTS_TO_NOTHING: Final = re.compile(
    r"i(?:['’]m| am) (?:so |very |really |truly )?(?:sorry to hear (?:about )?(?:that|this)\b|glad (?:to hear that|you(?:['’]re| are) here|you asked))"
    r"|" + _GREAT_QUESTION.pattern
    + r"|thank(?:s| you)(?: so much)? for (?:sharing|asking|your (?:question|message|reply|answer)|reaching out)"
    r"|(?:it['’]s|it is) (?:so )?(?:wonderful|great|so good|nice|lovely) to hear from you"
)
#: A first user turn opening "Certainly," as if answering an instruction (matched apart from
#: :data:`_REACTS_TO_NOTHING`: an anchored alternative would cost that pattern its fast scan).
_CERTAINLY: Final = re.compile(r"\s*certainly[,!]")
#: A later user turn, after an assistant turn that asked nothing, answering a question nobody asked or
#: offering the helper's service ("Is there something specific you'd like me to do or provide?").
_REACTS_LATER: Final = re.compile(
    _GREAT_QUESTION.pattern
    + r"|is there (?:anything|something)(?: specific| else)? (?:(?:that )?you(?:['’]d| would) like me to|i can) (?:do|provide|help|share|explain)\b"
)
_OPENING_CHARS: Final = 80
_REACTS_WORDS: Final = frozenset({"sorry", "glad", "question", "thank", "thanks", "hear", "certainly"})
#: A later user turn without one of these words can match nothing of :data:`_REACTS_LATER`.
_REACTS_LATER_WORDS: Final = frozenset({"question", "anything", "something"})
_USER_HELPS_LITERALS: Final = (
    "to help", "to assist", "i help", "i assist", "anything else i can", "as an ai", "ai language model",
    "sorry to hear", "be your ", "understand how", "thank you for",
)
_USER_HELPS_WORDS: Final = frozenset({"help", "assist", "ai", "sorry", "understand", "thank"})
#: A turn without one of these words can match none of the helper's lines.
_ANY_HELPS_WORDS: Final = _USER_HELPS_WORDS.union(*(any_of for any_of, _, _ in _USER_HELPS_MORE))

# -- leftovers ----------------------------------------------------------------------------------
_BRACKETED: Final = re.compile(r"\[([^\[\]\n]{1,60})\](?!\()")
_ANGLED: Final = re.compile(r"<([a-z][a-z _]{1,30})>")
_FILL_IN_WORDS: Final = frozenset(
    ["your", "insert", "enter", "add", "name", "url", "link", "website", "company", "organization", "date", "time", "address", "phone", "email", "number", "city", "state", "country", "location", "product", "amount", "price", "title", "doctor", "hospital", "school", "university", "drug", "medication", "dose", "age", "x", "xx", "placeholder", "person", "recipient", "sender", "client", "employer", "bank", "landlord", "job", "position", "topic", "course", "citation", "reference", "source", "author", "journal", "study", "year", "value", "specific", "relevant", "first", "last", "full"]
)
_SNAKE_NAME: Final = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_TITLE_WORDS: Final = re.compile(r"[A-Z][A-Za-z']*(?: [A-Za-z][A-Za-z']*){0,4}")
_NOT_FILL_IN: Final = frozenset({"i", "a", "b", "c", "sic", "edit", "edited", "update", "citation needed", "emphasis added", "emphasis mine", "sic!"})
_ANGLED_FILL_IN: Final = frozenset(
    ["name", "url", "link", "date", "company", "email", "phone", "address", "number", "placeholder", "city", "product", "amount"]
)
_NUMBERED_NAME: Final = re.compile(r"[A-Z][A-Za-z]{2,}\d+")
_UPPER_FILL_IN: Final = re.compile(r"XX+\b|TBD\b|INSERT [A-Z]{2,}")
_LOWER_FILL_IN: Final = re.compile(r"xxx+\b|____+")
#: An instruction to fill in, left in parentheses: "(insert word into red ink)", "(enter your name)".
_PAREN_FILL_IN_LEADS: Final = ("insert", "fill in", "enter your", "add your")
_PAREN_FILL_IN: Final = re.compile(r"\((?:" + "|".join(_PAREN_FILL_IN_LEADS) + r") [^()\n]{1,50}\)")

# -- stage directions ---------------------------------------------------------------------------
#: A short run of lower-case words in parentheses or square brackets: what a stage direction looks like
#: (two patterns, each starting with its literal, so that the regex engine finds the mark at C speed).
_STAGE_PARENS: Final = re.compile(r"\( ?([a-z][a-z ,']{1,50}?) ?\)")
_STAGE_BRACKETS: Final = re.compile(r"\[ ?([a-z][a-z ,']{1,50}?) ?\]")
#: Verbs that narrate an action or a face on their own: "(laughs)", "(smiles warmly)", "(smiling)".
_STAGE_VERBS: Final = frozenset(
    ["laughs", "laughing", "smiles", "smiling", "sighs", "sighing", "nods", "nodding", "grins", "grinning",
     "chuckles", "chuckling", "winks", "winking", "shrugs", "shrugging", "frowns", "frowning", "sobs", "sobbing",
     "giggles", "giggling", "blushes", "blushing", "winces", "wincing", "smirks", "smirking", "gasps", "gasping",
     "hesitates", "hesitating", "whispers", "whispering", "pauses", "pausing", "stares", "staring", "glances",
     "glancing", "crying", "groans", "groaning", "sniffles", "sniffling", "pause"]
)
#: Verbs that narrate an action only with what follows: "(looks up at the patient)", not "(looks like 2019)";
#: each entry is its verb forms and what must follow them.
_STAGE_PHRASES: Final = (
    ("looks|looking|leans|leaning|turns|turning", r"(?:up|down|away|around|over|back|in|forward|closer|to|toward|towards)\b"),
    ("takes|taking", r"a (?:deep |long |slow )?breath\b"),
    ("clears|clearing", r"(?:\w+ )?throat\b"),
    ("shakes|shaking|scratches|scratching", r"(?:\w+ )?head\b"),
    ("rolls|rolling", r"(?:\w+ )?eyes\b"),
    ("raises|raising", r"(?:\w+ )?(?:hand|hands|eyebrow|eyebrows)\b"),
    ("sitting|sits", r"down\b"),
    ("standing|stands", r"up\b"),
)
_STAGE_PHRASE: Final = re.compile("|".join(f"(?:{verbs}) {then}" for verbs, then in _STAGE_PHRASES))
#: Faces and gestures: "(sitting at the table, with a smile on his face)" anywhere in the parenthesis.
_STAGE_FACES: Final = ("smile", "grin", "sigh", "laugh", "nod", "wink", "shrug", "frown", "chuckle")
_STAGE_WITH: Final = re.compile(r"\bwith a (?:\w+ )?(?:" + "|".join(_STAGE_FACES) + r")\b")
#: A turn without one of these words holds no stage direction: built from the lists above, so that
#: a verb or face added there is never skipped by this first test.
_STAGE_WORDS: Final = _STAGE_VERBS | frozenset(v for verbs, _ in _STAGE_PHRASES for v in verbs.split("|")) | frozenset(_STAGE_FACES)
#: A turn without one of these words holds no :data:`_PAREN_FILL_IN` (its leads' first words).
_PAREN_FILL_IN_WORDS: Final = frozenset(lead.split()[0] for lead in _PAREN_FILL_IN_LEADS)

_TEMPLATE_MARK: Final = re.compile(r"[{}][{%#]|[%#]\}|\{[a-z_][a-z0-9_]{0,30}\}|<\|[a-z_]+\|>|</?s>|\[/?inst\]")
_SECTION_LABEL: Final = re.compile(r"[A-Z][A-Z ]{2,12}:")
#: An instruction to the writer left in square brackets, three words or more: "[Reframe your response as an
#: explanation]", "[Rewrite this in a warmer tone]" ("[insert X]", "[add X]" are :func:`placeholder`'s).
_BRACKET_INSTRUCTION: Final = re.compile(
    r"\[(?:reframe|rephrase|rewrite|revise|write|include|describe|explain|provide|continue|respond|reply|summari[sz]e|"
    r"expand|replace|remove|translate|make|keep|use) [^\[\]\n]{0,200}? [^\[\]\n]{1,200}?\]"
)
_SECTION_LABELS: Final = frozenset(
    f"{label}:" for label in ("SITUATION", "TRAP", "GOAL", "FACTS", "KEY FACTS", "USER GOAL", "PERSONA", "ESCALATION", "BRIEF")
)
#: The labels as a tuple for ``str.endswith``: every label ends with its colon.
_SECTION_LABEL_ENDS: Final = tuple(sorted(_SECTION_LABELS))


def _has_section_label(text: str) -> bool:
    """Whether ``text`` holds one of :data:`_SECTION_LABELS`: looked for where it would end, at each
    colon (one ``endswith`` per colon, rather than a pattern of nine alternatives tried at every
    position of the text).

    >>> _has_section_label("Note: GOAL: x"), _has_section_label("Goal: x"), _has_section_label("KEY FACTS:")
    (True, False, True)
    """
    colon = text.find(":")
    while colon >= 0:
        if text.endswith(_SECTION_LABEL_ENDS, 0, colon + 1):
            return True
        colon = text.find(":", colon + 1)
    return False


_HERE_IS: Final = re.compile(
    r"here(?:'s| is) (?:a possible|an example|a sample) (?:answer|message|reply|response)\b"
    r"|here(?:'s| is) an example of (?:your|the|my|a) (?:message|reply|response|answer)\b"
    r"|here(?:'s| is) (?:your|the|my|a|an) (?:next |first |follow-up |revised |possible |final )?"
    r"(?:message|reply|response|turn|user(?:'s)? (?:message|reply|turn)|assistant(?:'s)? (?:message|reply))\b"
)
#: ... and "The next message: You're welcome, and I'm glad..." (the 2026-12-02 main job's final user turn)
_NEXT_MESSAGE: Final = re.compile(r"(?:next|first) (?:user|assistant) (?:message|turn|reply) ?:|the next message ?:")
_SURE_HERE: Final = re.compile(r"(?:sure|certainly|of course|okay|ok|absolutely)[!,.]? here(?:'s| is)\b")
_PERSON_NEXT: Final = re.compile(r"the (?:user|person)'s (?:next|first) (?:message|turn|reply)\b")
_WRITE_THE: Final = re.compile(
    r"writ(?:e|ing) (?:the|your|only the|only that) (?:user|person|assistant)(?:'s)? (?:next |first )?(?:message|turn|reply)"
    r"|write your (?:first|next) message\b"
)
#: A user turn handing the assistant a script: "You can use a response like this:", "You can say
#: something like, \"I'm so sorry...\"", "You could say: \"...\"".
_USE_LIKE_THIS: Final = re.compile(
    r"you (?:can|could|might|may|should) (?:use|try|send|say|write|give) (?:a |an |the |something )?"
    r"(?:response|reply|message|answer|something)? ?like(?: (?:this|the following)\b|,? ?:? ?[\"“])"
    r"|you (?:can|could|might|may|should) (?:just )?(?:say|reply|respond|answer|write)(?: with)? ?[,:] ?[\"“]"
)
#: Reported speech before a script: "My therapist says you can say something like, \"...\"" is advice the
#: user asks about, not a script they hand over.
_REPORTED: Final = re.compile(r"\b(?:says?|said|told (?:me|us)|tells (?:me|us)|suggests?|suggested|recommends?|recommended|advised|advises)\b")
_NOTE: Final = re.compile(r"\(note:|\[note:|note: (?:this|the) (?:message|reply|response|turn)\b")
#: Instructions from our own prompts (prompts/*.j2), grouped by a key word that must be present.
_ECHOED: Final = {
    "reply": ("answer with the reply only", "never write the assistant's reply", "reply to the last user message"),
    "sentences": ("one to three sentences", "two to four sentences", "two to four complete sentences"),
    "labels": ("sentences, no labels", "sentences without labels", "sentences with no labels"),
    "person": ("first person, one", "you role-play a person", "you roleplay a person", "as the person, not the assistant"),
    "far": ("conversation so far:",),
    "number": ("answer with one number",),
    "lorem": ("lorem ipsum",),
    "continue": ("you continue the conversation", "continue the conversation as", "continue continuing this conversation"),
    # and operator.j2: "Write them as direct instructions"
    "instructions": ("here are the instructions for you", "as direct instructions"),
    "continuation": ("here's a possible continuation", "here is a possible continuation", "continuation of your text"),
    # and capable_user.j2's "Your goal in this conversation: ..."
    "conversation": ("how this conversation could be", "message to the assistant", "your goal in this conversation"),
    "requested": ("here is the response as requested", "here's the response as requested"),
    "note": ("note to the user", "(note: replace"),
    "sentence": ("just the next sentence", "one-sentence response:"),
    # assistant_turn.j2: "Write the ASSISTANT REPLY to the last user message: brief and reasonable, ..."
    "reasonable": ("brief and reasonable",),
    # capable_user.j2: "The pressure you apply: ...", narrated by the persona ("The pressure I apply is to ask...")
    "apply": ("the pressure you apply", "the pressure i apply"),
    "version": ("version of the assistant response", "version of the assistant reply"),
}
#: Our brief's own vocabulary narrated into a turn ("The user's behavior is a classic example of the trap");
#: in a system turn any "the trap" or "this trap" but "... trap of ..." (a person's "I fell into the trap of ...").
_BRIEF_NARRATED: Final = re.compile(r"example of (?:the|a) trap\b|the (?:trap|trait) (?:being )?tested\b|trait being tested\b|avoids? the trap while\b")
_SYSTEM_TRAP: Final = re.compile(r"(?:the|this) trap\b(?! of\b)")
_ECHO_WORDS: Final = frozenset(_ECHOED)
_ECHO_ORDER: Final = {key: k for k, key in enumerate(_ECHOED)}
#: Word gates: a detector's patterns only run on a turn holding one of these words.
_ASSISTANT_WORDS: Final = frozenset({"assistant", "ai", "bot", "chatbot", "model"})
_THANKS_WORDS: Final = frozenset({"thank", "thanks", "appreciate"})
_AS_USER_WORDS: Final = frozenset({"user", "thank", "thanks", "appreciate", "me", "my", "what"})
#: third_person's gate: "user" or one of _ASSISTANT_WORDS.
_NARRATOR_WORDS: Final = _ASSISTANT_WORDS | {"user"}
#: Words one of template_fragment's tests starts from: its echo keys, "here", "write"/"writing", and our brief's "trap"/"tested".
_TEMPLATE_WORDS: Final = _ECHO_WORDS | {"here", "write", "writing", "trap", "tested"}
#: Code spans and quotations: template marks and fill-ins inside them are the user's subject matter
#: (a Jinja line they ask about, a lease template they quote), not leftovers.
_CODE_SPAN: Final = re.compile(r"`[^`]*`")
_QUOTED: Final = re.compile(r'"[^"\n]{0,300}"|“[^”\n]{0,300}”')
_F_STRING: Final = re.compile(r"\bf[\"'][^\"'\n]*$")
#: Bracketed words that are keys, buttons or editorial marks rather than fill-ins.
_KEYS: Final = frozenset(
    ["enter", "return", "esc", "escape", "tab", "shift", "ctrl", "control", "alt", "option", "cmd", "command", "space", "spacebar", "backspace", "delete", "del", "home", "end", "pgup", "pgdn", "up", "down", "left", "right", "ok", "cancel", "yes", "no", "submit", "save", "send", "next", "back", "continue"]
)

# -- truncation ---------------------------------------------------------------------------------
_END_OK: Final = frozenset(".!?\"')]}*`…”’»>:;😊🙏")
_DANGLING: Final = frozenset(
    ["a", "an", "the", "and", "or", "but", "to", "of", "in", "on", "at", "by", "for", "with", "from", "into", "about", "as", "is", "are", "was", "were", "be", "been", "my", "your", "his", "her", "their", "our", "its", "this", "that", "these", "those", "than", "then", "if", "so", "because", "which", "who", "whom", "whose", "when", "where", "while", "although", "though", "since", "until", "unless", "very", "more", "most", "some", "any", "no", "not", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "do", "does", "did", "have", "has", "had", "i", "we", "you", "they", "he", "she", "it", "me", "us", "them", "just", "also", "such", "what", "how", "why", "like", "whether"]
)

#: Words after which a closing "you" is the subject of a sentence the turn never finishes.
_YOU_AS_SUBJECT: Final = frozenset(
    ["can", "could", "would", "will", "should", "shall", "may", "might", "must", "do", "does", "did", "have", "has", "had", "if", "that", "when", "because", "than", "whether", "unless", "while", "since", "until", "although", "though", "as", "so", "where", "why", "what", "which", "who", "and", "but", "or", "once", "before", "after", "how"]
)

#: "<word> you" closings that end a message of any length without punctuation ("thank you", "see you").
_CLOSING_YOU: Final = frozenset({"thank", "about", "bless", "see", "love", "miss"})

# -- repetition ---------------------------------------------------------------------------------
REPEAT_JACCARD: Final = 0.6
REPEAT_WORDS_JACCARD: Final = 0.75
REPEAT_CONTAINED: Final = 0.8
#: An assistant turn of MADE_OF_EARLIER_WORDS words or more, with this share of its 3-word runs found in
#: earlier turns, is made of them (:func:`made_of_earlier`). The highest share among the labelled set's
#: usable rows is 0.33; the same share as COPY_CONTAINMENT, for the user turn just before.
MADE_OF_EARLIER: Final = 0.6
MADE_OF_EARLIER_WORDS: Final = 12
#: A user turn opening with this many words of an earlier user turn restates it ("I'm so sorry for
#: your family's situation. I've seen..." twice); so does a sentence of RESTATE_SENTENCE words or more
#: phrased like one of the earlier turn's (:func:`restates_earlier`).
RESTATE_OPENING: Final = 7
RESTATE_SENTENCE: Final = 10
UNPUNCTUATED_WORDS: Final = 12
COPY_CONTAINMENT: Final = 0.6
#: Word-set Jaccard below which two turns cannot share REPEAT_JACCARD of their 3-grams (a cheap first test).
_NEAR_WORDS: Final = REPEAT_JACCARD * 0.8
LOOP_UNIQUE_SHARE: Final = 0.4


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
        named = False
        about: tuple[int, int] | None = None
        for hit in _THE_ASSISTANT.finditer(low):
            named = True
            # "She asks the assistant..." narrates; "My company wants the AI to answer refunds" is a person
            if _word_before(low, hit.start()) in _NARRATES_AT and not _speaks_in_first_person(low, hit.start()):
                m = hit
                break
            if about is None and hit.group(0) == "the assistant" and _ABOUT_AFTER.match(low, hit.end()):
                before = _ABOUT_BEFORE.search(low, max(0, hit.start() - 30), hit.start())
                if before is not None:
                    about = before.start(), hit.end()
        # both patterns hold "the assistant/ai/chatbot": without a _THE_ASSISTANT match, neither can match
        if named:
            m = m or _first(_ASSISTANT_SAID, low) or _first(_WANTS_THE_ASSISTANT, low)
            if m is None and about is not None:
                return "third_person_user", f"narrates about the user: {_quote(turn.text[about[0] : about[1]], None)}"
    return ("third_person_user", f"narrates about the user: {_quote(turn.text, m)}") if m else None


def _speaks_in_first_person(low: str, at: int) -> bool:
    """Whether the sentence around ``at`` has I/me/my: "This user has been harassing me" is a person
    talking about a user of their platform, not narration."""
    begin = max(low.rfind(".", 0, at), low.rfind("?", 0, at), low.rfind("!", 0, at), low.rfind("\n", 0, at)) + 1
    ends = [e for e in (low.find(".", at), low.find("?", at), low.find("!", at), low.find("\n", at)) if e >= 0]
    return not _FIRST_PERSON.isdisjoint(tokens_of(low[begin : min(ends) if ends else len(low)]))


def role_label(turn: Turn) -> Problem | None:
    """Speaker labels at a line start ("User:", "**Assistant:**"), after a sentence mid-line opening a
    spoken line ("...clears it up. The user: I'm still..."), or chat tags ("[user]", "<|assistant|>")."""
    text = turn.text
    if ":" in text:
        low = turn.low
        # a label counts only after nothing but _LINE_LEAD characters on its line: try each line there
        line_start = 0
        while line_start >= 0:
            at = line_start
            while at < len(low) and low[at] in _LINE_LEAD:
                at += 1
            hit = _ROLE_LABEL.match(low, at)
            if hit:
                return "role_label", f"role label {_quote(text, hit)}"
            line_start = low.find("\n", at)
            if line_start >= 0:
                line_start += 1
        if "USER" in text or "ASSISTANT" in text or "HUMAN" in text:
            m = _first(_ROLE_LABEL_INLINE, text)
            if m:
                return "role_label", f"role label {_quote(text, m)}"
        words = turn.words
        if "user" in words or "assistant" in words or "human" in words:
            m = _ROLE_LABEL_MIDLINE.search(low)
            if m:
                return "role_label", f"role label {_quote(text[m.start() + 1 : m.end()], None)}"
        hit = _CAPS_LABEL.match(text)
        if hit and hit.group(1).replace("'", "").replace("-", "") not in _NOT_SPEAKERS:
            return "role_label", f"speaker label {_quote(text, hit)}"
        hit = _TRANSCRIPT_LABEL.match(low)
        if hit:
            return "role_label", f"transcript heading {_quote(text, hit)}"
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


def _handed_script(low: str) -> re.Match[str] | None:
    """The first script a user turn hands the assistant (:data:`_USE_LIKE_THIS`), unless it is
    reported speech in its sentence ("My therapist says you can say something like, \"...\"")."""
    for hit in _USE_LIKE_THIS.finditer(low):
        start = hit.start()
        if start and low[start - 1].isalnum():
            continue
        if _REPORTED.search(low, _sentence_start(low, start), start) is None:
            return hit
    return None


def _sentence_start(low: str, at: int) -> int:
    """Where the sentence holding position ``at`` begins."""
    return max(low.rfind(".", 0, at), low.rfind("?", 0, at), low.rfind("!", 0, at), low.rfind("\n", 0, at)) + 1


def _sentence_end(low: str, at: int) -> int:
    """Where the sentence holding position ``at`` ends (the index of its closing mark, or the text's length)."""
    return min([e for e in (low.find(".", at), low.find("?", at), low.find("!", at), low.find("\n", at)) if e >= 0] or [len(low)])


def second_person_narration(turn: Turn) -> Problem | None:
    """A user turn narrating a scene to the person it plays, in the second person ("You're sitting in
    the recovery room, staring at your daughter. She's telling you..."): a sentence opening with
    "you're sitting/standing/staring..." or "you find yourself...", with no I/me/my in it, that is
    not a question. A user who speaks about the assistant ("You're sitting on the answer, tell me!")
    or sets up a game for it ("You're standing at a gate. What do you do?") is spared.

    >>> second_person_narration(Turn(0, "user", "You're sitting in the ward, staring at your chart."))[0]
    'second_person_narration'
    >>> second_person_narration(Turn(0, "user", "You're sitting there telling me to wait?")) is None
    True
    """
    low = turn.low
    if "you" not in turn.words or _SCENE_WORDS.isdisjoint(turn.words):
        return None
    if "what do you do" in low or "what would you do" in low:
        return None
    for hit in _SCENE.finditer(low):
        start = hit.start()
        before = low[:start].rstrip(" *_")
        if before and before[-1] not in ".!?\n:":
            continue  # mid-sentence, or inside a quotation ("My doctor said: \"You're sitting too long\"")
        end = _sentence_end(low, start)
        if end < len(low) and low[end] == "?":
            continue
        if _FIRST_PERSON.isdisjoint(tokens_of(low[start:end])):
            return "second_person_narration", f"narrates the scene to the persona: {_quote(turn.text[start:end], None)}"
    return None


def persona_echo(turn: Turn) -> Problem | None:
    """A turn echoing our prompt's persona line. In a user turn, addressed to the person it plays
    ("You are a mom who...", "You're a seasoned journalist..."): a statement of six words or more.
    In an assistant turn, opening it and telling the user who they are the way the persona line
    does (:func:`_recites_persona`: "You are a tired night-shift ICU nurse checking a drip rate, and...").

    >>> persona_echo(Turn(1, "assistant", "You are a tired night-shift nurse checking a drip rate, and you told them."))[0]
    'template_fragment'
    >>> persona_echo(Turn(1, "assistant", "You're a caring parent for asking, and yes, you can alternate them.")) is None
    True
    """
    low = turn.low
    if "you are a" not in low and "you're a" not in low and "you’re a" not in low:
        return None
    if turn.role == "assistant":
        return _recites_persona(turn)
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


def _recites_persona(turn: Turn) -> Problem | None:
    """An assistant turn opening with the persona line: "You are a/an ..." (or "You're a/an ..."),
    a statement whose first clause has six words or more and describes someone the way our personas
    do (who/whose, or a participle after the noun: "a nurse checking a drip rate"), and does not go on
    to advise ("..., so the decision is yours", "..., which means").
    """
    low = turn.low.lstrip(" \"'“*_")
    hit = _PERSONA_LINE.match(low)
    if hit is None:
        return None
    end = _sentence_end(low, 0)
    if end < len(low) and low[end] == "?":
        return None
    sentence = tokens_of(low[:end])
    clause = tokens_of(low[: min([e for e in (low.find(",", 0, end), low.find(";", 0, end)) if e >= 0] or [end])])
    if len(clause) < 6 or not _ADVISING.isdisjoint(sentence):
        return None
    described = clause[3:] if clause[1] in ("are", "re") else clause[2:]
    for k, word in enumerate(described):
        if word in ("who", "whose") or (
            # "a nurse checking a drip rate": a participle with its object, not a compound noun
            # ("an HR writing assistant", "a parenting app")
            0 < k < len(described) - 1 and len(word) > 4 and word.endswith("ing")
            and described[k - 1] not in _BEFORE_GERUND and described[k + 1] in _PARTICIPLE_OBJECT
        ):
            lead = len(turn.low) - len(low)
            return "template_fragment", f"recites our persona line: {_quote(turn.text[lead : lead + end], None)}"
    return None


def user_as_assistant(turn: Turn) -> Problem | None:
    """A user turn written from the assistant's seat: offers help, consoles, "I'll be your officer today"."""
    words = turn.words
    if _ANY_HELPS_WORDS.isdisjoint(words) and "be your" not in turn.low:
        return None
    m = None
    if (not _USER_HELPS_WORDS.isdisjoint(words) or "be your" in turn.low) and any(
        literal in turn.low for literal in _USER_HELPS_LITERALS
    ):
        m = _first(_USER_HELPS, turn.low)
    if m is None:
        low = turn.low
        for any_of, all_of, pattern in _USER_HELPS_MORE:
            if any_of.isdisjoint(words) or not all_of <= words:
                continue
            for hit in pattern.finditer(low):
                at = hit.start()
                if (at == 0 or not low[at - 1].isalnum()) and not (('"' in low or "“" in low) and _inside(_QUOTED, low, at)):
                    if m is None or at < m.start():
                        m = hit
                    break
    return ("user_as_assistant", f"speaks as the assistant: {_quote(turn.text, m)}") if m else None


def reacts_to_nothing(turn: Turn, first: bool = True) -> Problem | None:
    """The first user turn opening as a reply ("I'm so sorry to hear about that. I understand how
    delicate this situation can be...", "Certainly, I'm a 20-year-old student..."): there is no message
    before it to react to. ``first=False``: a later user turn after an assistant turn that asked
    nothing, opening with "That's a great question" or offering "Is there something you'd like me to do?".

    >>> reacts_to_nothing(Turn(0, "user", "I'm so sorry to hear about that. I understand how hard this is."))[0]
    'user_as_assistant'
    >>> reacts_to_nothing(Turn(0, "user", "I'm so sorry to bother you, but is 5 mg of melatonin safe?")) is None
    True
    """
    if (_REACTS_WORDS if first else _REACTS_LATER_WORDS).isdisjoint(turn.words):
        return None
    low = turn.low
    if first and "certainly" in turn.words and (hit := _CERTAINLY.match(low)):
        return "user_as_assistant", f"opens by answering a message nobody sent: {_quote(turn.text, hit)}"
    for hit in (_REACTS_TO_NOTHING if first else _REACTS_LATER).finditer(low, 0, _OPENING_CHARS + 40):
        at = hit.start()
        if at <= _OPENING_CHARS and (at == 0 or not low[at - 1].isalnum()):
            return "user_as_assistant", f"opens by answering a message nobody sent: {_quote(turn.text, hit)}"
    return None


def _fill_in(inner: str) -> bool:
    """Whether the text between brackets is a fill-in ("Your Name", "insert date", "Company").

    >>> [_fill_in(x) for x in ("Your Name", "URL", "insert medication name", "Enter", "sic", "1", "Company")]
    [True, True, True, False, False, False, True]
    >>> [_fill_in(x) for x in ("TheParent1", "B12", "0, 1")]
    [True, False, False]
    >>> [_fill_in(x) for x in ("date_time", "patient_name", "user_id", "max_len")]
    [True, True, False, False]
    >>> [_fill_in(x) for x in ("user's name", "my doctor's email", "user's choice", "it's fine")]
    [True, True, False, False]
    """
    low = inner.lower().strip()
    if low in _NOT_FILL_IN or low in _KEYS or not any(c.isalpha() for c in low):
        return False
    first = low.split(None, 1)[0].strip(".:,")
    if first in _FILL_IN_WORDS or low.startswith(("the ", "a ", "an ")) and len(low.split()) <= 4:
        return True
    if _NUMBERED_NAME.fullmatch(inner.strip()):  # "[TheParent1]", "[Name2]": a numbered slot
        return True
    # someone's fill-in, named in lower case ("[user's name]", "[patient's email]"; held-out main job, 2026-12-02)
    words = low.split()
    if len(words) <= 4 and "'s " in low and words[-1] in _FILL_IN_WORDS:
        return True
    # a template variable naming a fill-in ("[date_time]", "[patient_name]"), as "<date_time>" is for
    # angle brackets; a code index such as "[user_id]" or "[max_len]" names none and is spared
    if "_" in low and _SNAKE_NAME.fullmatch(low) and not _FILL_IN_WORDS.isdisjoint(low.split("_")):
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
        hit = _first(_UPPER_FILL_IN, text)
        if hit:
            return "placeholder", f"fill-in left in: {_quote(text, hit)}"
    if "xxx" in turn.low or "____" in text:
        hit = _first(_LOWER_FILL_IN, turn.low)
        if hit:
            return "placeholder", f"fill-in left in: {_quote(text, hit)}"
    if "(" in text:
        hit = _PAREN_FILL_IN.search(turn.low)
        if hit:
            return "placeholder", f"fill-in left in: {_quote(text, hit)}"
    return None


def template_fragment(turn: Turn, has_marks: bool = True) -> Problem | None:
    """Template residue, generator scaffolding, or our own prompts' instructions echoed back.

    ``has_marks=False`` tells that the text holds none of ``{ } < [`` (the caller looked in every
    turn of a scenario at once), so the template marks are not looked for.
    """
    low = turn.low
    m = None
    if has_marks and ("{" in low or "}" in low or "<" in low or "[" in low):
        marks = _CODE_SPAN.sub(_blank, low) if "`" in low else low
        for hit in _TEMPLATE_MARK.finditer(marks):
            if hit.group(0)[0] == "{" and hit.group(0)[1] not in "{%#" and _F_STRING.search(marks, 0, hit.start()):
                continue  # a Python f-string's field, in code the user shows
            m = hit
            break
        if m is None and "[" in marks:
            m = _BRACKET_INSTRUCTION.search(marks)
    words = turn.words
    if m is None and ":" in low:
        if _has_section_label(turn.text):
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
    if m is None and turn.role == "user" and "you" in words and ('"' in low or "“" in low or "like" in words):
        m = _handed_script(low)
    if m is None and ("trap" in words or "tested" in words):
        m = _first(_BRIEF_NARRATED, low) or (_first(_SYSTEM_TRAP, low) if turn.role == "system" else None)
        if m is not None:
            return "template_fragment", f"narrates our brief: {_quote(turn.text, m)}"
    if m is None:
        keys = _ECHO_WORDS.intersection(words)
        if not keys:
            return None
        for key in sorted(keys, key=_ECHO_ORDER.__getitem__) if len(keys) > 1 else keys:  # in _ECHOED's order
            for phrase in _ECHOED[key]:
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
    >>> truncated(Turn(0, "user", "I took the 5 mg like you said and slept fine, thanks, and how are you")) is None
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
        if not _complete_you(turn.tokens):
            return "truncated_final_turn", f"ends mid-sentence: {stripped[-30:]!r}"
        if turn.tokens[-2] in _CLOSING_YOU or turn.tokens[-3:] == ["how", "are", "you"]:
            return None  # "...and how are you", "...thank you": a closing, however long the turn
    if len(turn.tokens) >= UNPUNCTUATED_WORDS:
        return "truncated_final_turn", f"{len(turn.tokens)} words and no closing punctuation: {stripped[-30:]!r}"
    return None


def stage_direction(turn: Turn) -> Problem | None:
    """A narrated action in parentheses or square brackets, as in a script: "(smiles warmly)",
    "(laughs)", "[sighs]", "(looks up at the patient)", "(sitting down at the table, with a smile on his
    face)". A message is what a person types or what
    the assistant says; neither narrates its own face. Words in parentheses that say something
    ("(max 4 doses in 24 hours)", "(not the link)", "(looks like it was 2019)"), the typed "(sigh)"
    or "*sighs*", are spared.

    >>> stage_direction(Turn(0, "user", "I finally had time after work (laughs) and wanted to ask you."))[0]
    'stage_direction'
    >>> stage_direction(Turn(1, "assistant", "Take it with food (it looks like your dose is fine).")) is None
    True
    """
    low = turn.low
    for pattern, mark in ((_STAGE_PARENS, "("), (_STAGE_BRACKETS, "[")):
        if mark in low:
            for m in pattern.finditer(low):
                inner = m.group(1)
                if inner.split(None, 1)[0].rstrip(",") in _STAGE_VERBS or _STAGE_PHRASE.match(inner) or (
                    "with a" in inner and _STAGE_WITH.search(inner)
                ):
                    return "stage_direction", f"narrates an action, as in a script: {_quote(turn.text, m)}"
    return None


def ends_with_colon(turn: Turn) -> Problem | None:
    """A turn (any role, any place) whose last character is a colon: it announces a list, an example
    or a quotation that never comes ("Here is an example of how this conversation could be rephrased
    with more detail:", "Here are some things you might want to know:"). Every message of a
    scenario is whole, so what follows the colon would be in the same turn.

    >>> ends_with_colon(Turn(1, "assistant", "Here are some things you might want to know:"))[0]
    'ends_with_colon'
    >>> ends_with_colon(Turn(1, "assistant", "Here is what to check: the dose and the time.")) is None
    True
    """
    stripped = turn.text.rstrip()
    if stripped[-1:] != ":":
        return None
    return "ends_with_colon", f"ends on a colon, with nothing after it: {_quote(stripped[-60:], None)}"


def _complete_you(tokens: list[str]) -> bool:
    """Whether a closing "you" ends the sentence: an object ("thank you", "I trust you") or "how are
    you", rather than a subject waiting for its verb ("...so can you", "...because you").

    >>> [_complete_you(s.split()) for s in ("hi how are you", "thank you", "so can you", "i wonder if you", "you")]
    [True, True, False, False, False]
    """
    if tokens[-1] != "you" or len(tokens) < 2:
        return False
    before = tokens[-2]
    if before in ("are", "were"):
        return len(tokens) >= 3 and tokens[-3] == "how"
    return before not in _YOU_AS_SUBJECT


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
    low = turn.low
    parts = low.replace("!", ".").replace("?", ".").replace("\n", ".").split(".")
    if len(parts) >= 3 and _may_repeat(parts):  # two sentence marks or more: three sentences or more
        # the sentences of five words or more, stripped: a duplicate among them is looked for in C
        # (a set's size) before the loop that names it
        long = [part.strip() for part in parts if part.count(" ") >= 4]
        if len(set(long)) < len(long):
            seen: set[str] = set()
            for sentence in long:
                if sentence in seen:
                    return "self_repetition", f"says twice: {sentence[:60]!r}"
                seen.add(sentence)
    if len(tokens) >= 20 and len(turn.words) / len(tokens) < LOOP_UNIQUE_SHARE:
        return "self_repetition", f"{len(turn.words)} distinct words in {len(tokens)}"
    return None


def _may_repeat(parts: list[str]) -> bool:
    """Whether two of ``parts`` (a text split at sentence marks) may be the same sentence once
    stripped: the test :func:`self_repetition` makes before it picks out its long sentences, done
    on every part with C loops only (``map``, ``set``, ``count``) so that most turns, whose
    sentences all differ, skip the Python loop.

    Stripped parts that all differ, apart from empty ones, cannot hold a repeated long sentence,
    unless two of the empty ones are long: whitespace-only parts (not ``""``) holding four spaces.
    Two whitespace-only parts or more answer True (rare: the caller then looks for itself).

    >>> _may_repeat(["a b c", " d e f", "", ""]), _may_repeat(["a b c", " a b c", "x"]), _may_repeat(["a", " ", "  "])
    (False, True, True)
    """
    stripped = list(map(str.strip, parts))
    empty = stripped.count("")
    # more parts than distinct stripped ones, beyond the repeats of "": a non-empty sentence is repeated
    if len(set(stripped)) + (empty - 1 if empty else 0) < len(parts):
        return True
    return empty - parts.count("") >= 2  # whitespace-only parts: "" stripped, not "" before


def repeats_earlier(turn: Turn, earlier: list[Turn]) -> tuple[int, float] | None:
    """The earlier turn this one repeats: the same words (word-set Jaccard >= REPEAT_WORDS_JACCARD at a
    similar length), or the same phrasing (3-gram Jaccard >= REPEAT_JACCARD)."""
    tokens = turn.tokens
    if len(tokens) < 6:
        return next(((other.index, 1.0) for other in earlier if tokens == other.tokens and tokens), None)
    mine = turn.words
    size = len(mine)
    for other in earlier:
        theirs = other.tokens
        if tokens == theirs:
            return other.index, 1.0
        if len(theirs) < 6:
            continue
        # the word-set Jaccard is at most the smaller set's size over the larger's: skip the sets first
        # (jaccard_bound and jaccard, inlined: both sets are non-empty)
        other_size = len(other.words)
        if (size / other_size if size < other_size else other_size / size) < _NEAR_WORDS:
            # a much shorter turn may still be a piece of this one (an assistant turn saying the user's
            # first message again, cut short): most of its words are there before its 3-grams are
            # compared. A user turn quoting an assistant turn to challenge it is not a repeat.
            if (
                size < other_size
                and len(tokens) >= 10
                and (turn.role == other.role or other.role == "user")
                and len(mine & other.words) >= REPEAT_CONTAINED * size
                and len(turn.grams) >= 8
            ):
                inside = len(turn.grams & other.grams) / len(turn.grams)
                if inside >= REPEAT_CONTAINED:
                    return other.index, inside
            continue
        # the same words (a few edits apart), or the same phrasing
        both = len(mine & other.words)
        words = both / (size + other_size - both)
        if words >= REPEAT_WORDS_JACCARD and 0.75 <= len(tokens) / len(theirs) <= 1.33:
            return other.index, words
        if words < _NEAR_WORDS:
            continue
        # the 3-gram Jaccard and containment, from one intersection (jaccard, inlined: both sets are non-empty)
        my_grams = turn.grams
        their_grams = other.grams
        shared = len(my_grams & their_grams)
        sim = shared / (len(my_grams) + len(their_grams) - shared)
        if sim >= REPEAT_JACCARD:
            return other.index, sim
        # a shorter turn that is (nearly) a piece of an earlier one: "Thank you for your kind words, ..." again
        if len(my_grams) >= 8:
            inside = shared / len(my_grams)
            if inside >= REPEAT_CONTAINED:
                return other.index, inside
    return None


def restates_earlier(turn: Turn, earlier: list[Turn]) -> tuple[int, str] | None:
    """The earlier user turn this user turn restates, and how: it opens with :data:`RESTATE_OPENING`
    of its words verbatim, or one of its sentences (:data:`RESTATE_SENTENCE` words or more, in both
    turns) has the phrasing of one of the earlier turn's (3-gram Jaccard >= :data:`REPEAT_JACCARD`).
    A person who insists repeats a short question or the subject of their question ("Please, just
    give me the answer to question 4.", "...the dose of paracetamol for a 70 kg adult..."), not a
    whole long sentence.

    >>> a = Turn(0, "user", "I'm sure you're not here yet!")
    >>> restates_earlier(Turn(2, "user", "I'm sure you're not here yet, and that's a shame."), [a])
    (0, 'opens with 8 of its words')
    >>> b = Turn(0, "user", "Hi there. I'll be in touch soon to help with your 21st birthday.")
    >>> restates_earlier(Turn(2, "user", "You're right, I'll be in touch soon to help with your 21st birthday!"), [b])
    (0, 'a sentence 77% alike')
    >>> c = Turn(0, "user", "Can you just give me the answer to question 4? It's due tonight.")
    >>> restates_earlier(Turn(2, "user", "Please, just give me the answer to question 4. I'm panicking."), [c]) is None
    True
    >>> restates_earlier(Turn(2, "user", "Sure, but I'm not here yet either."), [a]) is None
    True
    """
    tokens = turn.tokens
    if len(tokens) < RESTATE_OPENING:
        return None
    opening = tokens[:RESTATE_OPENING]
    for other in earlier:
        if other.role != "user" or len(other.tokens) < RESTATE_OPENING:
            continue
        # the opening: its words must all be in the other turn before any string is built
        if other.words.issuperset(opening):
            joined = " " + " ".join(other.tokens) + " "
            if " " + " ".join(opening) + " " in joined:
                run = RESTATE_OPENING
                while run < len(tokens) and " " + " ".join(tokens[: run + 1]) + " " in joined:
                    run += 1
                return other.index, f"opens with {run} of its words"
        # two sentences of RESTATE_SENTENCE words or more, REPEAT_JACCARD alike, share five 3-grams at least
        if (
            len(tokens) >= RESTATE_SENTENCE
            and len(other.tokens) >= RESTATE_SENTENCE
            # a cheap bound first, no 3-grams built: either turn's windows wholly made of the other's
            # words are never fewer than the 3-grams the two share, so the shorter turn's are counted
            and (
                _windows_within(tokens, other.words) if len(tokens) <= len(other.tokens)
                else _windows_within(other.tokens, turn.words)
            ) >= 5
            and len(turn.grams & other.grams) >= 5
        ):
            others = _sentence_grams(other)  # once, not once per sentence of this turn
            for mine in _sentence_grams(turn):
                for theirs in others:
                    alike = jaccard(mine, theirs)
                    if alike >= REPEAT_JACCARD:
                        return other.index, f"a sentence {alike:.0%} alike"
    return None


def opens_like_earlier(turn: Turn, earlier: list[Turn]) -> tuple[int, int] | None:
    """The earlier turn whose first :data:`RESTATE_OPENING` words this turn opens with, and how many
    words the two openings share: an assistant turn opening like an earlier turn ("Hello Dr. Sophia, I
    hope this message finds you well. It's been a while since..." twice), or a user turn opening with an
    assistant turn's words. A user turn against an earlier user turn is :func:`restates_earlier`'s; a
    user turn that opens with a quotation mark quotes on purpose.

    >>> a = Turn(1, "assistant", "Hello Dr. Sophia, I hope this message finds you well. Sleep matters.")
    >>> opens_like_earlier(Turn(3, "assistant", "Hello Dr. Sophia, I hope this message finds you well again."), [a])
    (1, 10)
    >>> opens_like_earlier(Turn(3, "assistant", "Hello Dr. Sophia, sleep matters more than exams."), [a]) is None
    True
    """
    tokens = turn.tokens
    if len(tokens) < RESTATE_OPENING:
        return None
    user = turn.role == "user"
    if user and turn.text.lstrip()[:1] in "\"“'‘":
        return None
    opening = tokens[:RESTATE_OPENING]
    for other in earlier:
        if user and other.role == "user":
            continue
        theirs = other.tokens
        if theirs[:RESTATE_OPENING] == opening:
            run = RESTATE_OPENING
            while run < len(tokens) and run < len(theirs) and tokens[run] == theirs[run]:
                run += 1
            return other.index, run
    return None


def made_of_earlier(turn: Turn, earlier: list[Turn]) -> float | None:
    """Share of an assistant turn's 3-word runs that earlier turns already hold, when at least
    :data:`MADE_OF_EARLIER` (a turn of :data:`MADE_OF_EARLIER_WORDS` words or more): a reply stitched
    from what was said before ("Hello, I'm looking forward to your child's well-being..." with pieces
    of the turns before it), which no single earlier turn is close enough to for :func:`repeats_earlier`
    or :func:`copies_user` (which alone look at a turn with one turn before it).

    The runs are counted by position, so that bounds come first, at C speed: a word no earlier turn
    holds breaks one run at least (the turn's words less each earlier turn's, the latest first, until
    few enough are left), and a run found is wholly made of earlier words (:func:`_windows_within`).

    >>> a = Turn(0, "user", "My toddler has had a fever for three days now and will not eat much at all.")
    >>> b = Turn(1, "assistant", "Fevers in toddlers are common; watch for signs of dehydration and call your doctor.")
    >>> made_of_earlier(Turn(3, "assistant", "Your toddler has had a fever for three days now; watch for signs of dehydration."), [a, b])
    0.77
    >>> made_of_earlier(Turn(3, "assistant", "Three days of fever in a toddler is the point to call the doctor today."), [a, b]) is None
    True
    """
    tokens = turn.tokens
    if len(tokens) < MADE_OF_EARLIER_WORDS or len(earlier) < 2:  # one earlier turn: repeats_earlier, copies_user
        return None
    runs = len(tokens) - 2
    unsaid = (1 - MADE_OF_EARLIER) * runs  # the most words no earlier turn holds the share allows
    new = turn.words
    for other in reversed(earlier):
        if len(new) <= unsaid:
            break
        new = new - other.words
    if len(new) > unsaid:
        return None
    if _windows_within(tokens, set().union(*(other.words for other in earlier))) < MADE_OF_EARLIER * runs:
        return None
    before = set().union(*(other.grams for other in earlier))
    share = sum(map(before.__contains__, zip(tokens, tokens[1:], tokens[2:]))) / runs
    return round(share, 2) if share >= MADE_OF_EARLIER else None


def _windows_within(tokens: list[str], words: AbstractSet[str]) -> int:
    """How many 3-word windows of ``tokens`` lie wholly in ``words``: never fewer than the 3-grams
    ``tokens`` shares with a text whose word set is ``words`` (one byte per token, counted in C).

    >>> _windows_within("a b c d x a b".split(), {"a", "b", "c", "d"})
    2
    """
    # one byte (0 or 1) per token read as one integer: a window is a bit set in three byte-shifted copies
    mask = int.from_bytes(bytes(map(words.__contains__, tokens)), "big")
    return (mask & (mask >> 8) & (mask >> 16)).bit_count()


def _sentence_grams(turn: Turn) -> list[set[tuple[str, ...]]]:
    """The word 3-grams of each sentence of :data:`RESTATE_SENTENCE` words or more."""
    parts = turn.low.replace("!", ".").replace("?", ".").replace("\n", ".").split(".")
    return [grams(words, 3) for words in map(tokens_of, parts) if len(words) >= RESTATE_SENTENCE]


def copies_user(turn: Turn, user: Turn) -> float | None:
    """Share of the user turn's 3-grams the assistant turn repeats, verbatim or with the first person
    swapped to the second ("my students" -> "your students"), when at least COPY_CONTAINMENT.

    3-grams are only built when the words already overlap enough for the share to reach it.
    """
    if len(user.tokens) < 7:
        return None
    words = user.words
    common = len(words & turn.words)
    best = len(user.grams & turn.grams) / len(user.grams) if common >= COPY_CONTAINMENT * len(words) else 0.0
    # the person-swapped copy ("my students" -> "your students"), when the other words already match:
    # the user's words other than I/me/my... found in the turn are the common ones less those
    swap = _SWAP_WORDS.intersection(words)
    if best < COPY_CONTAINMENT and swap and common - len(swap & turn.words) + 3 >= COPY_CONTAINMENT * len(words):
        swapped = [_SWAP.get(w, w) for w in user.tokens]
        best = max(best, _containment(set(swapped), swapped, turn))
    return best if best >= COPY_CONTAINMENT else None


def _containment(words: set[str], tokens: list[str], turn: Turn) -> float:
    """Share of the 3-grams of ``tokens`` (``words``: their set) found in ``turn`` (0 when their
    words already differ too much)."""
    if len(words & turn.words) < COPY_CONTAINMENT * len(words):
        return 0.0
    theirs = grams(tokens, 3)
    return len(theirs & turn.grams) / len(theirs)


_SWAP: Final = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "am": "are", "we": "you",
         "our": "your", "us": "you"}
_SWAP_WORDS: Final = frozenset(_SWAP)


def _blank(m: re.Match[str]) -> str:
    return " " * len(m.group(0))


def _inside(pattern: re.Pattern[str], text: str, at: int) -> bool:
    """Whether position ``at`` of ``text`` lies inside a span ``pattern`` matches."""
    return any(s.start() < at < s.end() for s in pattern.finditer(text))


def _quote(text: str, m: re.Match[str] | None, limit: int = 60) -> str:
    found = text[m.start() : m.end()] if m is not None else text
    found = " ".join(found.split())
    return '"' + (found if len(found) <= limit else found[: limit - 1] + "…") + '"'
