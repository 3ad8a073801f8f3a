import { describe, expect, test } from "vitest";
import { SseParser, type SseMessage } from "./sse.js";

const stream = [
  "event: connected\n",
  'data: {"type":"connected","seq":3}\n',
  "\n",
  ": ping\n",
  "\n",
  "id: 4\n",
  "event: task.created\n",
  'data: {"type":"task.created","seq":4}\n',
  "\n",
  "id: 5\r\n",
  "event: task.updated\r\n",
  'data: {"type":"task.updated",\r\n',
  'data: "seq":5}\r\n',
  "\r\n",
  "event: close\r",
  'data: {"code":1012,"reason":"server restarting"}\r',
  "\r",
].join("");

const expected: SseMessage[] = [
  { event: "connected", data: '{"type":"connected","seq":3}', id: undefined },
  { event: "task.created", data: '{"type":"task.created","seq":4}', id: "4" },
  { event: "task.updated", data: '{"type":"task.updated",\n"seq":5}', id: "5" },
  { event: "close", data: '{"code":1012,"reason":"server restarting"}', id: "5" },
];

function parseInChunks(text: string, cuts: number[]): SseMessage[] {
  const parser = new SseParser();
  const out: SseMessage[] = [];
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    out.push(...parser.push(text.slice(from, cut)));
    from = cut;
  }
  return out;
}

describe("SSE parser", () => {
  test("sse: events, ids, multi-line data, comments skipped, LF, CRLF and CR line ends", () => {
    expect(parseInChunks(stream, [])).toEqual(expected);
  });

  test("sse: the same messages whatever the chunking (every split point, and byte by byte)", () => {
    for (let cut = 0; cut <= stream.length; cut++) expect(parseInChunks(stream, [cut])).toEqual(expected);
    expect(parseInChunks(stream, Array.from({ length: stream.length }, (_, i) => i))).toEqual(expected);
  });

  test("sse: a CR at the end of one chunk and the LF at the start of the next are one line end", () => {
    const parser = new SseParser();
    expect(parser.push("data: a\r")).toEqual([]);
    expect(parser.push("\n\r")).toEqual([{ event: "message", data: "a", id: undefined }]);
    expect(parser.push("\ndata: b\n\n")).toEqual([{ event: "message", data: "b", id: undefined }]);
  });

  test("sse: a message without data is not dispatched; an incomplete one waits for its blank line", () => {
    const parser = new SseParser();
    expect(parser.push("event: nothing\n\n")).toEqual([]);
    expect(parser.push("data: x")).toEqual([]);
    expect(parser.push("\n")).toEqual([]);
    expect(parser.push("\n")).toEqual([{ event: "message", data: "x", id: undefined }]);
  });

  test("sse: a leading byte order mark is dropped; a field without a colon has an empty value", () => {
    const parser = new SseParser();
    expect(parser.push("\uFEFFdata\n\n")).toEqual([{ event: "message", data: "", id: undefined }]);
  });
});
