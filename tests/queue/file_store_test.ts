import { join } from "node:path";
import { openFileStore } from "../../src/queue/mod.ts";
import { queueStoreContract } from "./store_contract.ts";

queueStoreContract("file store", (dir) => openFileStore(join(dir, "queue")));
