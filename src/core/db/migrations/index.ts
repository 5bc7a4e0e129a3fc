import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-spine.js';
import * as m0002 from './0002-data.js';
import * as m0003 from './0003-backup.js';
import * as m0004 from './0004-migration.js';
import * as m0005 from './0005-gateway.js';
import * as m0006 from './0006-stops.js';
import * as m0007 from './0007-notify.js';
import * as m0008 from './0008-incidents.js';
import * as m0009 from './0009-monitoring.js';
import * as m0010 from './0010-hardware-and-rounds.js';
import * as m0011 from './0011-notices.js';
import * as m0012 from './0012-breach-and-reports.js';
import * as m0013 from './0013-terms.js';
import * as m0014 from './0014-export-jobs.js';
import * as m0015 from './0015-emergency-stop-incident.js';
import * as m0016 from './0016-restore-jobs.js';
import * as m0017 from './0017-record-digest.js';
import * as m0018 from './0018-orphan-blobs.js';
import * as m0019 from './0019-gateway-emergency.js';

/** Imported statically so the list cannot differ between a checkout and a packaged install. */
export const migrationProvider: MigrationProvider = {
  async getMigrations(): Promise<Record<string, Migration>> {
    return { '0001-spine': m0001, '0002-data': m0002, '0003-backup': m0003, '0004-migration': m0004, '0005-gateway': m0005, '0006-stops': m0006, '0007-notify': m0007, '0008-incidents': m0008, '0009-monitoring': m0009, '0010-hardware-and-rounds': m0010, '0011-notices': m0011, '0012-breach-and-reports': m0012, '0013-terms': m0013, '0014-export-jobs': m0014, '0015-emergency-stop-incident': m0015, '0016-restore-jobs': m0016, '0017-record-digest': m0017, '0018-orphan-blobs': m0018, '0019-gateway-emergency': m0019 };
  },
};
