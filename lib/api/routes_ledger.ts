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
  const { announceIntervalMs: interval, announceTimeoutMs: timeout, maxNameBytes } = ctx.settings;
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
      handler: (c) => {
        const bucket = nameParam(c, "bucket", maxNameBytes);
        const key = nameParam(c, "key", maxNameBytes);
        // Go stores the path text as a JSON string (the Go client puts base64url JSON there).
        ledger.persist(interval, timeout, bucket, key, pathParam(c, "value"));
        return sendJson(c, ANNOUNCING);
      },
    },
    {
      method: "DELETE",
      path: "/api/ledger/:bucket",
      handler: (c) => {
        ledger.announceDeleteBucket(interval, timeout, nameParam(c, "bucket", maxNameBytes));
        return sendJson(c, ANNOUNCING);
      },
    },
    {
      method: "DELETE",
      path: "/api/ledger/:bucket/:key",
      handler: (c) => {
        const bucket = nameParam(c, "bucket", maxNameBytes);
        const key = nameParam(c, "key", maxNameBytes);
        ledger.announceDeleteBucketKey(interval, timeout, bucket, key);
        return sendJson(c, ANNOUNCING);
      },
    },
  ];
}
