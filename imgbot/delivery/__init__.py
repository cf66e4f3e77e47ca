"""The answer a user sees: every sentence, the Markdown of a picture, and sending them."""
