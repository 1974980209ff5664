"""Pure parsers of procfs network files: text in, frozen data out, ParseError on anything odd."""
