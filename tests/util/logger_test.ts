import assert from "node:assert/strict";
import { createLogger, formatLogRecord, type LogRecord } from "../../lib/util/logger.ts";

const record: LogRecord = {
  level: "warn",
  logger: "node.dht",
  msg: "cannot dial",
  fields: { peer: "12D3KooWx", attempts: 3, token: "s3cret", Authorization: "Bearer s3cret" },
  time: new Date(1_700_000_000_250),
};

Deno.test("JSON log lines keep zap's field names, then the record's fields, secrets redacted", () => {
  const line = formatLogRecord(record, "json");
  assert.ok(line.endsWith("\n"));
  const json = JSON.parse(line);
  assert.deepEqual(Object.keys(json).slice(0, 4), ["level", "ts", "logger", "msg"]);
  assert.deepEqual(json, {
    level: "warn",
    ts: 1_700_000_000.25,
    logger: "node.dht",
    msg: "cannot dial",
    peer: "12D3KooWx",
    attempts: 3,
    token: "[redacted]",
    Authorization: "[redacted]",
  });
  assert.equal(JSON.parse(formatLogRecord({ ...record, logger: "" }, "json")).logger, "edgevpn");
});

Deno.test("text log lines: time, level, logger, message, key=value; secrets redacted", () => {
  const line = formatLogRecord(record, "text");
  assert.equal(
    line,
    "2023-11-14T22:13:20.250Z WARN  node.dht: cannot dial peer=12D3KooWx attempts=3 " +
      "token=[redacted] Authorization=[redacted]\n",
  );
  assert.ok(!line.includes("s3cret"));
});

Deno.test("a logger writes only records at or above its level, named by its child", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "error", sink: (r) => lines.push(formatLogRecord(r, "json")) });
  log.child("api").warn("hidden");
  log.child("api").error("kept");
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]).logger, "api");
});
