"""The Learn page's lesson: the three runs (all together, TAG groups, each alone), how the
runner schedules them (``workflow``), the numbers and verdict (``report``) and the same lesson
without the app (``headless``)."""
