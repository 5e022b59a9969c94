import assert from "node:assert/strict";
import { PeerStanding } from "../../lib/node/peer_standing.ts";

Deno.test("three offences in quick succession ban a non-member; a member is only ranked down", () => {
  let now = 0;
  const members = new Set(["member"]);
  const standing = new PeerStanding({ isMember: (p) => members.has(p), now: () => now });
  assert.equal(standing.score("member"), 10);
  assert.equal(standing.score("stranger"), 0);
  assert.equal(standing.penalise("stranger"), "penalised");
  now += 1000;
  assert.equal(standing.penalise("stranger"), "penalised");
  now += 1000;
  assert.equal(standing.penalise("stranger"), "ban");
  assert.ok(standing.score("stranger") < -80, "below GossipSub's graylist threshold");
  for (let i = 0; i < 5; i++) assert.equal(standing.penalise("member"), "penalised");
  assert.ok(standing.score("member") < -80);
  assert.equal(standing.penalise("stranger2", 3), "ban", "weighted offences count at once");
});

Deno.test("penalties fade with their half-life, and offences far apart never add up to a ban", () => {
  let now = 0;
  const standing = new PeerStanding({ isMember: () => false, now: () => now, halfLifeMs: 1000 });
  standing.penalise("p");
  now = 1000;
  assert.equal(standing.points("p"), 0.5);
  for (let i = 0; i < 20; i++) {
    now += 3000;
    assert.equal(standing.penalise("p"), "penalised");
  }
  now += 60_000;
  assert.equal(standing.points("p"), 0);
  assert.equal(standing.score("p"), 0);
});

Deno.test("the peers remembered are bounded", () => {
  const standing = new PeerStanding({ isMember: () => false, now: () => 0, maxPeers: 2 });
  standing.penalise("a");
  standing.penalise("b");
  standing.penalise("c");
  assert.equal(standing.points("a"), 0);
  assert.equal(standing.points("c"), 1);
});
