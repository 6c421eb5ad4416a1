import { builder } from './builder.js';
import './actor.js';
import './field-change.js';
import './audit-log-filter.js';
import './audit-log.js';
import './activity-chart.js';
import './log-event.js';
import './rename-log.js';
import './audit-log-added.js';
import './api-key.js';
import './viewer-token.js';
import './chain-verification.js';
import './checkpoint.js';
import './audit-record-input.js';
import './erasure-result.js';
import './retention-policy.js';

export const schema = builder.toSchema({ sortSchema: true });
