import { ensureAdminKey } from '../../src/services/bootstrap.js';
import { startShop } from './app.js';

const shop = await startShop({ database: process.env.SHOP_DATABASE ?? './data/shop.sqlite', port: Number(process.env.PORT ?? 4001) });
await ensureAdminKey(shop.dataSource, {}, (line) => console.log(line));
console.log(`shop API on ${shop.shopUrl}, its audit log on ${shop.auditUrl}`);
process.on('SIGINT', () => void shop.stop().then(() => process.exit(0)));
process.on('SIGTERM', () => void shop.stop().then(() => process.exit(0)));
