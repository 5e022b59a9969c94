import assert from "node:assert/strict";
import { createLogger, type LogRecord } from "../../lib/util/logger.ts";
import { installProcessGuard, processErrorCounts } from "../../lib/util/process_guard.ts";

Deno.test("the process guard counts every uncaught error and logs at most 10 lines a minute", () => {
  const records: LogRecord[] = [];
  let now = 1_000_000;
  const uninstall = installProcessGuard(
    createLogger({ level: "info", sink: (r) => records.push(r) }),
    () => now,
  );
  const before = processErrorCounts();
  try {
    for (let i = 0; i < 25; i++) {
      const event = new ErrorEvent("error", { error: new Error(`boom ${i}`), cancelable: true });
      globalThis.dispatchEvent(event);
      assert.ok(event.defaultPrevented, "the process is not ended for it");
    }
    const rejection = new PromiseRejectionEvent("unhandledrejection", {
      promise: Promise.resolve(),
      reason: "not even an Error",
      cancelable: true,
    });
    globalThis.dispatchEvent(rejection);
    assert.ok(rejection.defaultPrevented);
    assert.equal(records.length, 10);
    assert.match(records[0].msg, /^uncaught error \(the node keeps running\)$/);
    assert.equal(records[0].fields?.error, "boom 0");
    now += 60_000;
    globalThis.dispatchEvent(
      new ErrorEvent("error", { error: new Error("later"), cancelable: true }),
    );
    assert.equal(records.length, 11);
    assert.equal(records[10].fields?.suppressed, 16, "the 15 errors and 1 rejection not logged");
  } finally {
    uninstall();
  }
  const after = processErrorCounts();
  assert.equal(after.uncaughtErrors - before.uncaughtErrors, 26);
  assert.equal(after.unhandledRejections - before.unhandledRejections, 1);
  const event = new ErrorEvent("error", { error: new Error("after uninstall"), cancelable: true });
  globalThis.dispatchEvent(event);
  assert.equal(event.defaultPrevented, false, "uninstalled");
});
