/**
 * The README's quick start, typed into terminals as a new user would, on two "machines" (network
 * namespaces with a home directory each): `./deno task join` creates a network and prints the
 * command for the next machine; that command, run on the second machine with the token pasted
 * when asked, joins with DHCP; the machines ping each other over the VPN; Ctrl-C stops both,
 * each exits 0 and leaves no interface behind. Each command runs in a pseudo-terminal
 * (`script`), so Ctrl-C is the terminal's SIGINT to the whole foreground process group
 * (`./deno` → npx → `deno task` → `deno run`), as at a keyboard.
 * Needs root, /dev/net/tun and util-linux `script`; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { namespaceSkipReason } from "../../scripts/netns.ts";
import { REPO_ROOT } from "../helpers/cli.ts";
import { createNamespaceLan, pingUntilReply } from "./vpn_helpers.ts";

function skipReason(): string | undefined {
  const ns = namespaceSkipReason({ tun: true });
  if (ns) return ns;
  for (const dir of ["/usr/bin/script", "/bin/script"]) {
    try {
      Deno.statSync(dir);
      return undefined;
    } catch { /* next */ }
  }
  return "util-linux script (a pseudo-terminal) is missing";
}
const skip = skipReason();
if (skip) console.log(`quick start terminal test skipped: ${skip}`);

const HOME = Deno.env.get("HOME") ?? "/root";

/** A command typed into a terminal of its own inside a namespace. */
class Terminal {
  readonly child: Deno.ChildProcess;
  #text = "";
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<void>;

  constructor(netns: string, home: string, command: string, env: Record<string, string>) {
    this.child = new Deno.Command("ip", {
      args: ["netns", "exec", netns, "script", "-qfec", command, "/dev/null"],
      cwd: REPO_ROOT,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: home,
        TERM: "dumb",
        // script runs the command with $SHELL -c. A non-interactive dash (Debian's sh) dies of
        // the terminal's SIGINT itself and reports 130 whatever the command returns; bash runs a
        // lone command in its own place, as a user's interactive shell waits for its exit code.
        SHELL: "/bin/bash",
        NO_COLOR: "1",
        // The machine has no internet: the runtime and modules come from the shared caches.
        DENO_DIR: Deno.env.get("DENO_DIR") ?? `${HOME}/.cache/deno`,
        npm_config_cache: Deno.env.get("npm_config_cache") ?? `${HOME}/.npm`,
        ...env,
      },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    const dec = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) this.#text += dec.decode(chunk, { stream: true });
    };
    this.#done = Promise.all([pump(this.child.stdout), pump(this.child.stderr)]).then(() => {});
  }

  get screen(): string {
    return this.#text.replaceAll("\r", "");
  }

  async type(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.screen.match(pattern);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${pattern} after ${timeoutMs} ms on the screen:\n${this.screen}`);
  }

  /** Ctrl-C, then the exit code of the command (script -e passes it on). */
  async interrupt(): Promise<number> {
    await this.type("\x03");
    const status = await this.child.status;
    await this.#writer.close().catch(() => {});
    await this.#done;
    return status.code;
  }

  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* exited */ }
    await this.child.status;
    await this.#writer.close().catch(() => {});
    await this.#done;
  }
}

/** The README's commands, as written there (`sudo` dropped when the test already runs as root). */
async function readmeCommands(): Promise<{ first: string }> {
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  const quick = readme.slice(readme.indexOf("## Quick start"));
  const first = quick.match(/```sh\n(sudo \.\/deno task join)\n```/);
  assert.ok(first, "the README's quick start shows `sudo ./deno task join`");
  return { first: asRoot(first[1]) };
}

function asRoot(command: string): string {
  return Deno.uid() === 0 ? command.replace(/^sudo /, "") : command;
}

Deno.test({
  name: "README quick start in terminals: create, join with the printed command, ping, Ctrl-C",
  ignore: skip !== undefined,
  async fn() {
    const lan = await createNamespaceLan("evq", 2, 238);
    const dir = await Deno.makeTempDir({ prefix: "evquick" });
    const terms: Terminal[] = [];
    try {
      const { first } = await readmeCommands();
      const [a, b] = lan.nodes;
      // Local discovery only: each node listens on its LAN address, the first has a bootstrap
      // list that reaches nobody, the second the first's address (environment variables, so
      // that the typed commands stay the README's). Quick rounds, so DHCP decides in seconds.
      const quick = {
        EDGEVPNDHT: "false",
        EDGEVPNLEDGERINTERVAL: "2",
        EDGEVPNLEDGERSYNCINTERVAL: "1",
        HEALTHCHECKINTERVAL: "2",
      };
      await Deno.mkdir(`${dir}/a`);
      await Deno.mkdir(`${dir}/b`);
      const one = new Terminal(a.name, `${dir}/a`, first, {
        ...quick,
        EDGEVPNLISTENMADDRS: `/ip4/${a.address}/tcp/4001`,
        EDGEVPNBOOTSTRAPPEERS:
          `/ip4/${a.address}/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq`,
      });
      terms.push(one);
      const printed = await one.waitFor(
        /Network token[^\n]*\n\n(\S+)\n[\s\S]*?On the next machine[^\n]*\n\n {2}(\S[^\n]*)\n/,
        120_000,
      );
      const [, token, next] = printed;
      assert.match(
        next,
        /--token-file -$/,
        "the printed command keeps the token off the command line",
      );
      assert.doesNotMatch(next, new RegExp(token.slice(0, 40)));
      const firstId = (await one.waitFor(/Node ID: (\S+)/))[1];
      const up1 = await one.waitFor(/VPN up: interface (\S+) with address ([\d.]+)\/24/);

      const two = new Terminal(b.name, `${dir}/b`, asRoot(next), {
        ...quick,
        EDGEVPNLISTENMADDRS: `/ip4/${b.address}/tcp/4001`,
        EDGEVPNBOOTSTRAPPEERS: `/ip4/${a.address}/tcp/4001/p2p/${firstId}`,
      });
      terms.push(two);
      await two.waitFor(/Network token: /, 120_000);
      await two.type(`${token}\r`);
      const up2 = await two.waitFor(/VPN up: interface (\S+) with address ([\d.]+)\/24/, 90_000);
      assert.notEqual(up2[2], up1[2]);
      await pingUntilReply(a, up2[2]);
      await pingUntilReply(b, up1[2]);

      for (const [term, ns, iface] of [[two, b, up2[1]], [one, a, up1[1]]] as const) {
        const code = await term.interrupt();
        assert.equal(code, 0, `exit code after Ctrl-C:\n${term.screen.slice(-3000)}`);
        const links = await ns.run("ip", ["-o", "link", "show"]);
        assert.ok(!links.includes(`${iface}:`), `interface ${iface} left behind:\n${links}`);
      }
      terms.length = 0;
    } finally {
      for (const t of terms) await t.kill();
      await lan.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
