/**
 * Child process of the disk-store crash test: writes keys `<prefix>-<n>` in a loop into the
 * ledger kept in DIR and prints each key once its write has resolved (is durable).
 * Usage: deno run -A tests/ledger/crash_writer.ts DIR PREFIX
 */

import { createLedger } from "../../lib/ledger/ledger.ts";
import { openDiskStore } from "../../lib/ledger/store_disk.ts";

const [dir, prefix] = Deno.args;
const ledger = await createLedger({ store: await openDiskStore(dir) });
const out = new TextEncoder();
if (ledger.loadWarning) Deno.stdout.writeSync(out.encode(`WARNING ${ledger.loadWarning}\n`));
for (let n = 0;; n++) {
  const key = `${prefix}-${n}`;
  await ledger.add("crash", { [key]: n });
  Deno.stdout.writeSync(out.encode(`${key}\n`));
}
