"""citekb: answers from a company's own documents, each claim cited by document, page and lines."""

__version__ = "0.1.0"
