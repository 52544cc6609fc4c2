// Least-privilege role assignments for the app's user-assigned identity:
// - Storage Blob Data Owner on the host/deployment storage account (minimum for identity-based
//   AzureWebJobsStorage and the Flex deployment container);
// - Monitoring Metrics Publisher on Application Insights (local auth is disabled).
// No Key Vault is deployed (no secrets exist: Entra-only PostgreSQL, identity-based storage,
// Entra ingestion for telemetry), so there is no Key Vault Secrets User assignment.

@description('Principal (object) id of the app identity.')
param principalId string

@description('Name of the storage account the host and the deployment container use.')
param storageAccountName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource storageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource monitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisherRoleId)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output roleAssignmentIds array = [
  storageBlobDataOwner.id
  monitoringMetricsPublisher.id
]
