"""Images, files and audio: attachments as content parts, audio replies as clips."""
