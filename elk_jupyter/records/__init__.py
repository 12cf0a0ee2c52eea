"""What is kept: the turn and experiment record formats, notebook files, audio files, the reply cache and replay."""
