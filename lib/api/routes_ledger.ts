/** Routes over the ledger: the last block, buckets and keys, and writes/deletes through announce jobs. */

import { encodeBlock } from "../ledger/block.ts";
import {
  ANNOUNCING,
  type ApiRoute,
  type ApiRouteContext,
  nameParam,
  pathParam,
  sendJson,
  sendJsonText,
} from "./route.ts";

/**
 * `/api/blockchain` and `/api/ledger…`, in Go's shapes (`null` for an unknown bucket, `""` for
 * a missing key; values are the stored JSON text as strings).
 *
 * @example
 * ```ts
 * const routes = ledgerRoutes({ components, settings: DEFAULT_API_SETTINGS });
 * ```
 */
export function ledgerRoutes(ctx: ApiRouteContext): ApiRoute[] {
  const { ledger } = ctx.components;
  const { maxNameBytes } = ctx.settings;
  return [
    {
      method: "GET",
      path: "/api/blockchain",
      handler: (c) => sendJsonText(c, encodeBlock(ledger.lastBlock())),
    },
    {
      method: "GET",
      path: "/api/ledger",
      handler: (c) => sendJson(c, ledger.currentData()),
    },
    {
      method: "GET",
      path: "/api/ledger/:bucket",
      handler: (c) => {
        const bucket = nameParam(c, "bucket", maxNameBytes);
        return sendJson(c, ledger.currentData().get(bucket) ?? null);
      },
    },
    {
      method: "GET",
      path: "/api/ledger/:bucket/:key",
      handler: (c) => {
        const bucket = nameParam(c, "bucket", maxNameBytes);
        const key = nameParam(c, "key", maxNameBytes);
        return sendJson(c, ledger.currentData().get(bucket)?.get(key) ?? "");
      },
    },
    {
      method: "PUT",
      path: "/api/ledger/:bucket/:key/:value",
      handler: async (c) => {
        const bucket = nameParam(c, "bucket", maxNameBytes);
        const key = nameParam(c, "key", maxNameBytes);
        // Go stores the path text as a JSON string (the Go client puts base64url JSON there).
        const value = pathParam(c, "value");
        // The reply acknowledges a write that is in our ledger (and on disk with
        // --ledger-state), so a crash right after it loses nothing. Go announces it from a job
        // for a while instead; ours reaches the others through the ledger's sync, and no job
        // is left to write it back after a DELETE that follows.
        ledger.supersede(bucket, key);
        await ledger.add(bucket, new Map([[key, value]]));
        return sendJson(c, ANNOUNCING);
      },
    },
    {
      method: "DELETE",
      path: "/api/ledger/:bucket",
      handler: async (c) => {
        const bucket = nameParam(c, "bucket", maxNameBytes);
        ledger.supersede(bucket);
        await ledger.deleteBucket(bucket);
        return sendJson(c, ANNOUNCING);
      },
    },
    {
      method: "DELETE",
      path: "/api/ledger/:bucket/:key",
      handler: async (c) => {
        const bucket = nameParam(c, "bucket", maxNameBytes);
        const key = nameParam(c, "key", maxNameBytes);
        ledger.supersede(bucket, key);
        await ledger.delete(bucket, key);
        return sendJson(c, ANNOUNCING);
      },
    },
  ];
}
