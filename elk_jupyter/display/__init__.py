"""What a user sees of a turn: the live panel widget, the finished bundle, the inert Markdown and text copies."""
