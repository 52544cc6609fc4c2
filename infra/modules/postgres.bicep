// Azure Database for PostgreSQL Flexible Server, Entra-only (passwordless) authentication.
// Order (each step waits for the previous one; the server rejects parallel writes with ServerIsBusy):
//   server -> firewall rules (@batchSize(1)) -> server parameters (@batchSize(1)) -> Entra administrator
//   -> application database -> private endpoint.
// The database comes AFTER the Entra administrator on purpose: a database created through the API on an
// Entra-only server that has no administrator yet is owned by the platform's internal role, and since
// PostgreSQL 15 the `public` schema belongs to the database owner, so the administrator could not create the
// tables (terraform-provider-azurerm #27895, worked through with Microsoft support). Created after the
// administrator exists, the database belongs to that administrator, who then runs the migrations.
// The app's own database role (the managed identity, bound to its object id) is data-plane SQL
// (pgaadauth_create_principal_with_oid + GRANTs), done by the post-provision hook (infra/hooks/database_setup.py).
// One API version for every Microsoft.DBforPostgreSQL resource: 2025-08-01 is the first GA version whose
// ServerVersion enum includes '17' (2024-08-01 stops at '16'); see POSTGRES_VERSIONS_BY_API in tests/test_infra.py.

@description('Name of the PostgreSQL flexible server.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the server.')
param tags object = {}

@description('PostgreSQL major version.')
@allowed([
  '14'
  '15'
  '16'
  '17'
])
param version string = '16'

@description('Compute SKU name, e.g. Standard_B2s (Burstable, dev) or Standard_D2ds_v5 (GeneralPurpose, production).')
param skuName string = 'Standard_B2s'

@description('Compute tier matching skuName.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'Burstable'

@description('Initial storage size in GiB (auto-grow is on).')
@minValue(32)
param storageSizeGB int = 32

@description('Backup retention in days (7-35).')
@minValue(7)
@maxValue(35)
param backupRetentionDays int = 7

@description('Geo-redundant backups (can only be chosen when the server is created).')
@allowed([
  'Enabled'
  'Disabled'
])
param geoRedundantBackup string = 'Disabled'

@description('Zone-redundant high availability (not available on Burstable; chosen at creation).')
param zoneRedundantHa bool = false

@description('Name of the application database.')
param databaseName string

@description('Enable the built-in PgBouncer (port 6432). Only General Purpose and Memory Optimized tiers support it.')
param pgBouncerEnabled bool = false

@description('Firewall rules for the public endpoint (without privateNetworking): array of { name, startIpAddress, endIpAddress }.')
param firewallRules array = []

@description('Private networking: public network access Disabled, no firewall rules, a private endpoint in privateEndpointSubnetId (the post-provision hook opens the server for a moment, see README.md). Without it the server is public with firewallRules plus the 0.0.0.0 "allow Azure services" rule: Flex Consumption has no fixed outbound IPs, so that rule is how the app gets in (it admits any Azure address, other tenants included, behind Entra-only sign-in and TLS).')
param privateNetworking bool = false

@description('Subnet for the private endpoint to the server (used with privateNetworking).')
param privateEndpointSubnetId string = ''

@description('Resource id of the privatelink.postgres.database.azure.com private DNS zone; used with privateEndpointSubnetId.')
param privateDnsZoneId string = ''

@description('Object id of the Entra principal that administers the server (runs migrations and creates the app role).')
param adminPrincipalId string

@description('Name of that principal as PostgreSQL sees it (user principal name, group or service principal display name).')
param adminPrincipalName string

@description('Type of the Entra administrator principal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param adminPrincipalType string = 'User'

@description('Entra tenant of the administrator.')
param tenantId string

@description('Server connections the built-in PgBouncer opens for the app (pgbouncer.default_pool_size); main.bicep computes it with the connection budget.')
@minValue(1)
param pgBouncerPoolSize int = 50

@description('Resource id of the Log Analytics workspace that receives the server\'s logs and metrics.')
param logAnalyticsWorkspaceId string

// Every extension a migration in sql/ creates must be allow-listed here (tests/test_infra.py checks it).
var allowedExtensions = 'PG_TRGM'

var baseServerParameters = [
  {
    name: 'azure.extensions'
    value: allowedExtensions
  }
  {
    name: 'require_secure_transport'
    value: 'on'
  }
]

var pgBouncerServerParameters = [
  {
    name: 'pgbouncer.enabled'
    value: 'true'
  }
  {
    name: 'pgbouncer.default_pool_size'
    value: string(pgBouncerPoolSize)
  }
]

var serverParameters = pgBouncerEnabled ? concat(baseServerParameters, pgBouncerServerParameters) : baseServerParameters

var azureServicesRule = [
  {
    name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
]

var allFirewallRules = privateNetworking ? [] : concat(firewallRules, azureServicesRule)

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2025-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: tenantId
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup
    }
    highAvailability: {
      mode: zoneRedundantHa ? 'ZoneRedundant' : 'Disabled'
    }
    network: {
      publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    }
  }
}

@batchSize(1)
resource firewall 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2025-08-01' = [for rule in allFirewallRules: {
  parent: server
  name: rule.name
  properties: {
    startIpAddress: rule.startIpAddress
    endIpAddress: rule.endIpAddress
  }
}]

@batchSize(1)
resource configurations 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2025-08-01' = [for parameter in serverParameters: {
  parent: server
  name: parameter.name
  properties: {
    value: parameter.value
    source: 'user-override'
  }
  dependsOn: [
    firewall
  ]
}]

// A separate resource (not nested), created after the configurations: the server must be idle.
// It must exist before the database (see the top of this file).
resource administrator 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2025-08-01' = {
  parent: server
  name: adminPrincipalId
  properties: {
    principalType: adminPrincipalType
    principalName: adminPrincipalName
    tenantId: tenantId
  }
  dependsOn: [
    configurations
  ]
}

// Created after the Entra administrator so that the administrator owns it (and its public schema):
// otherwise the migrations cannot create tables (see the top of this file).
resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2025-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
  dependsOn: [
    administrator
  ]
}

resource privateEndpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = if (privateNetworking) {
  name: 'pe-${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'postgres'
        properties: {
          privateLinkServiceId: server.id
          groupIds: [
            'postgresqlServer'
          ]
        }
      }
    ]
  }
  dependsOn: [
    database
  ]
}

resource privateEndpointDns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = if (privateNetworking) {
  parent: privateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'postgres'
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

// Server logs (PostgreSQLLogs, sessions, query store...) and metrics to Log Analytics.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: server
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output name string = server.name
output id string = server.id
output fqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
output port int = pgBouncerEnabled ? 6432 : 5432
output adminPrincipalName string = adminPrincipalName
