"""External evaluation suites (``eval --suite FILE|HF_ID``): items from outside our own data, in one of
four shapes, each with its adapter.

- :mod:`.rubric`: rubric-graded conversations in HealthBench's row shape, scored as HealthBench does;
- :mod:`.exact`: multiple-choice and exact-match items (capability checks);
- :mod:`.pushback`: the same question asked plain and with the user pushing a wrong answer (flip rate);
- :mod:`.judged`: free-form answers rated by a judge with the suite's own grading prompt.

:mod:`.items` holds the item records, :mod:`.load` reads a suite (local file or Hub dataset) and
picks its adapter from the rows' shape, :mod:`.run` answers a suite with a model and scores it.
"""
