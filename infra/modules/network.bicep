// Private networking (main.bicep deploys this module when privateNetworking is true, the default):
// a VNet with
// - a subnet delegated to Microsoft.App/environments for Flex Consumption VNet integration
//   (the function app's outbound traffic, including to PostgreSQL, then leaves through the VNet);
// - a subnet for private endpoints (PostgreSQL gets one in postgres.bicep, blob storage in storage.bicep);
// - the private DNS zones privatelink.postgres.database.azure.com and privatelink.blob.<storage suffix>
//   linked to the VNet, so the usual host names resolve to the private endpoints from inside the VNet
//   (TLS verify-full keeps working because the host names do not change).
// The subscription needs the Microsoft.App resource provider registered for the delegation
// (README.md, Deploy to Azure, Manual steps).

@description('Name of the virtual network.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the network resources.')
param tags object = {}

@description('Address space of the virtual network.')
param addressPrefix string = '10.20.0.0/16'

@description('Address prefix of the subnet delegated to the function app (Flex Consumption VNet integration).')
param appSubnetPrefix string = '10.20.1.0/24'

@description('Address prefix of the subnet that holds private endpoints.')
param privateEndpointSubnetPrefix string = '10.20.2.0/24'

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource postgresDnsZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: 'privatelink.postgres.database.azure.com'
  location: 'global'
  tags: tags
}

resource postgresDnsZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: postgresDnsZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource blobDnsZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: 'privatelink.blob.${environment().suffixes.storage}'
  location: 'global'
  tags: tags
}

resource blobDnsZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: blobDnsZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}

output vnetId string = vnet.id
output appSubnetId string = '${vnet.id}/subnets/app'
output privateEndpointSubnetId string = '${vnet.id}/subnets/private-endpoints'
output postgresPrivateDnsZoneId string = postgresDnsZone.id
output blobPrivateDnsZoneId string = blobDnsZone.id
