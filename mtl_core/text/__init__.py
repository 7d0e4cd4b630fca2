"""Text for people: one-line terminal output (``terminal``), column and task labels
(``labels``) and the units values are shown in (``units``)."""
