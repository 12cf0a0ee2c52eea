"""What a cell asks and the conversation it joins: options, settings, history, context, planning, the run path."""
