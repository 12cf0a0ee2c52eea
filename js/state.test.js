import assert from "node:assert/strict";
import { test } from "node:test";
import { hasGap, reconcile, usageNumbers } from "./state.js";

test("deltas in order rebuild the text", () => {
  let acc = "";
  for (const [offset, text] of [[0, "Hel"], [3, "lo "], [6, "world"]]) acc = reconcile(acc, "", { offset, text });
  assert.equal(acc, "Hello world");
});

test("a repeated or overlapping delta does not duplicate text", () => {
  let acc = reconcile("Hello", "", { offset: 3, text: "lo" });
  assert.equal(acc, "Hello");
  acc = reconcile("Hello", "", { offset: 3, text: "lo!" });
  assert.equal(acc, "Hello!");
});

test("a gap keeps what we have until a checkpoint arrives", () => {
  const delta = { offset: 10, text: "more" };
  assert.equal(hasGap("Hello", delta), true);
  assert.equal(reconcile("Hello", "", delta), "Hello");
  assert.equal(reconcile("Hello", "Hello, big world", { offset: 16, text: "!" }), "Hello, big world!");
});

test("the final checkpoint makes the text exact", () => {
  assert.equal(reconcile("partial", "partial and final", { offset: 17, text: "" }), "partial and final");
});

test("usage numbers from either endpoint", () => {
  assert.deepEqual(usageNumbers({ prompt_tokens: 9, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 2 }, completion_tokens_details: { reasoning_tokens: 1 } }),
    { prompt: 9, completion: 4, cached: 2, reasoning: 1 });
  assert.deepEqual(usageNumbers({ input_tokens: 3, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 } }),
    { prompt: 3, completion: 5, cached: null, reasoning: 2 });
  assert.deepEqual(usageNumbers(null), { prompt: null, completion: null, cached: null, reasoning: null });
});
