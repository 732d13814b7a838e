import { join } from "node:path";
import { openKvStore } from "../../src/queue/mod.ts";
import { queueStoreContract } from "./store_contract.ts";

queueStoreContract("kv store", (dir) => openKvStore(join(dir, "queue.kv")));
