/**
 * The CLI with a fault trigger for tests: on SIGUSR2 an event listener throws, a timer throws
 * and a promise rejects, with nothing to catch any of them. Otherwise `cli.ts` itself.
 */
import { main } from "../../cli.ts";

Deno.addSignalListener("SIGUSR2", () => {
  const target = new EventTarget();
  target.addEventListener("poke", () => {
    throw new Error("listener failure injected by the test");
  });
  target.dispatchEvent(new Event("poke"));
  setTimeout(() => {
    throw new Error("timer failure injected by the test");
  }, 0);
  void Promise.reject(new Error("rejection injected by the test"));
});

Deno.exit(await main(Deno.args));
