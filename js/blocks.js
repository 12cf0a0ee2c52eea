// Incremental Markdown: a growing text drawn so that each update costs what the still-open block costs, not what
// the whole reply costs. Blocks that can no longer change stay in the DOM as they are; only the trailing, open part
// is lexed and drawn again. Every piece goes through the one render policy (render.js: the same marked parser,
// renderer and sanitizer), so drawing in pieces is exactly as strict as drawing at once.

// A block is final once a blank line follows it and the next block's first line is complete: from then on no text
// appended can make it part of something else (CommonMark: a blank line ends a paragraph, a table, a closed fence;
// a list or an indented code block goes on across a blank line only with an indented or a marker line, and that
// line's first characters settle which). https://spec.commonmark.org/0.31.2/#blocks-and-inlines
function finalCount(tokens) {
  for (let i = tokens.length - 2; i >= 0; i--) {
    if (tokens[i].type !== "space") continue;
    const next = tokens[i + 1];
    if (i + 2 < tokens.length || next.raw.includes("\n")) return i + 1;
  }
  return 0;
}

// While streaming, a trailing run of emphasis markers may be half of one: `**` with nothing after it yet, or the
// first `*` of a closing `**`. Such a run is held back, so `**bold*` does not flash as `*<em>bold</em>`; a run that
// can close what its line opened (`**bold**`) is kept. Inside an open code fence nothing is held back.
const TRAILING_RUN = /([*_~])\1*$/;
const OPENING_RUNS = /(?<![*_~\p{L}\p{N}])([*_~])\1*(?=[^\s*_~])/gu;

function heldBack(tail) {
  const run = TRAILING_RUN.exec(tail);
  if (!run) return 0;
  const before = tail[run.index - 1];
  if (before === undefined || /\s/.test(before)) return run[0].length; // opens nothing yet
  const line = tail.slice(tail.lastIndexOf("\n", run.index) + 1, run.index);
  const openers = [...line.matchAll(OPENING_RUNS)].filter((m) => m[1] === run[1]);
  const opener = openers[openers.length - 1];
  return opener && opener[0].length > run[0].length ? run[0].length : 0;
}

const CHUNK_CHARS = 4000;
const LONG_CHUNKS = 8; // from about 30,000 characters on

// A line that may define a link reference (https://spec.commonmark.org/0.31.2/#link-reference-definitions).
const REFERENCE_DEFINITION = /^ {0,3}\[[^\]\n]{1,999}\]:/m;

// How many characters of `source` make `normalized` characters once marked has turned CRLF and CR into LF.
function sourceLength(source, normalized) {
  if (!source.includes("\r")) return normalized;
  let i = 0;
  for (let n = 0; n < normalized; n++) i += source[i] === "\r" && source[i + 1] === "\n" ? 2 : 1;
  return i;
}

// `container` shows `text` through `policy`; `decorate(nodes, final)` is called on every node drawn (code chrome,
// math). `update(text, streaming)` draws a new state and returns nothing; work is O(open block) when `text` extends
// the previous one, else everything is drawn again.
export function streamingMarkdown(container, policy, { decorate = () => {}, maxChars = Infinity } = {}) {
  let done = ""; // the source prefix whose blocks are final and in the DOM
  let open = []; // the nodes of the open part, replaced on every update
  let chunk = null; // the <div class="elk-blocks"> settled blocks go into, and how much source it holds
  let chunkChars = 0;
  let chunks = 0;

  function reset() {
    container.replaceChildren();
    done = "";
    open = [];
    chunk = null;
    chunks = 0;
    container.classList.remove("elk-long");
  }

  // Settled blocks, in chunks of about CHUNK_CHARS of source: in a long answer the browser skips a whole chunk off
  // screen (content-visibility in panel.css), so style and layout per update stay flat as the answer grows.
  function settle(tokens) {
    for (let from = 0; from < tokens.length; ) {
      if (!chunk || chunkChars >= CHUNK_CHARS) {
        chunk = container.ownerDocument.createElement("div");
        chunk.className = "elk-blocks";
        container.insertBefore(chunk, open[0] || null);
        chunkChars = 0;
        // Only a long answer lets the browser skip chunks: skipped content has no innerText, which a short
        // answer does not need to give up.
        if (++chunks === LONG_CHUNKS) container.classList.add("elk-long");
      }
      let to = from;
      while (to < tokens.length && chunkChars < CHUNK_CHARS) chunkChars += tokens[to++].raw.length;
      const fragment = policy.tokensToFragment(tokens.slice(from, to));
      decorate([...fragment.childNodes], true);
      chunk.appendChild(fragment);
      from = to;
    }
  }

  function append(fragment, final) {
    const nodes = [...fragment.childNodes];
    decorate(nodes, final);
    container.appendChild(fragment);
    return nodes;
  }

  function lexed(tail, streaming) {
    const hold = streaming ? heldBack(tail) : 0;
    if (!hold) return policy.lex(tail);
    const tokens = policy.lex(tail.slice(0, -hold));
    return tokens[tokens.length - 1]?.type === "code" ? policy.lex(tail) : tokens;
  }

  function update(text, streaming) {
    // A link reference definition applies to the whole text, before it too: the final state is drawn at once.
    const redraw = !streaming && done && REFERENCE_DEFINITION.test(text);
    if (redraw || !text.startsWith(done) || text.length > maxChars) reset();
    for (const node of open) node.remove();
    open = [];
    if (text.length > maxChars) {
      open = append(policy.plainFragment(text), !streaming);
      return;
    }
    try {
      drawTail(text.slice(done.length), streaming);
    } catch {
      reset(); // a parser failure on hostile input: the whole text as plain text
      open = append(policy.plainFragment(text), !streaming);
    }
  }

  // Settled blocks of `tail` join the DOM for good; the rest is drawn as the open part.
  function drawTail(tail, streaming) {
    const tokens = lexed(tail, streaming);
    const final = streaming ? finalCount(tokens) : tokens.length;
    if (final > 0) {
      const settled = tokens.slice(0, final);
      settle(settled);
      done += tail.slice(0, sourceLength(tail, settled.reduce((n, token) => n + token.raw.length, 0)));
    }
    if (final < tokens.length) open = append(policy.tokensToFragment(tokens.slice(final)), false);
  }

  return { update, reset };
}
