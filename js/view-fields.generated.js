// Generated from elk_jupyter/display/view_fields.py by
// `python -m elk_jupyter.display.view_fields > js/view-fields.generated.js`: do not edit (tests/test_view_fields.py).
export const VIEW_MIME = "application/vnd.elk-jupyter.turn.v1+json";
export const VIEW_VERSION = 1;
// The fields other than the streamed ones, in the order the Panel declares them.
export const VIEW_FIELDS = ["endpoint", "conversation", "model_asked", "model", "status", "badge", "replayed", "error", "note", "attempts", "context", "usage", "timing", "tool_calls", "choices", "audio", "footer", "images"];
// Streamed fields: the checkpoint's name -> the live trait carrying each new piece.
export const STREAMED_FIELDS = {"text": "delta", "reasoning": "reasoning_delta"};
