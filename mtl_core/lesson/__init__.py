"""The Learn page's lesson: the three runs (all together, TAG groups, each alone) and how the
runner schedules them, the grouped run queued once when the together run ends (``workflow``),
everything a lesson shows read once from the store (``state``: the page draws it, ``lesson
--json`` prints it), the intervals and verdict (``report``) and the same lesson without the app
(``headless``)."""
