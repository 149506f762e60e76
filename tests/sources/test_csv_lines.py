"""CSV texts are read line by line without io.StringIO (which holds a copy of the text at four
bytes a character): the csv module must see exactly the lines StringIO would give it, so every
row, quoted newline and stray carriage return reads as before."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from hubpress.sources.csv_layout import csv_rows

_CSV_TEXT = st.text(alphabet='ab,"\r\n\x85\u2028 é', max_size=60)


@settings(max_examples=300, deadline=None)
@given(_CSV_TEXT)
def test_rows_read_from_a_text_are_those_of_csv_over_string_io(text):
    def rows(reader):
        try:
            return list(reader)
        except csv.Error as exc:
            return f"csv.Error: {exc}"

    assert rows(csv_rows(text)) == rows(csv.reader(io.StringIO(text)))
