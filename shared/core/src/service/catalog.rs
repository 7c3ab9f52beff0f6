//! Catalog discovery: the platform's selection flow, cloud provider → provider → location →
//! image → price (which names the size), for any signed-in user. One round trip each.

use vmapi_models::{
    CloudProvider, CloudProviderId, Image, Location, PriceOffer, Provider, ProviderId,
    ProviderRecord,
};

use super::base::Service;
use crate::error::{Error, NotFoundKind, Result};
use crate::ports::ProviderOffers;

impl Service {
    /// Every cloud provider; disabled ones too (`isDisabled`), which create refuses.
    pub async fn cloud_providers(&self) -> Result<Vec<CloudProvider>> {
        self.repo.cloud_providers().await
    }

    /// The providers of a cloud provider, with `cloudProvider` populated.
    pub async fn providers_of(&self, cloud: CloudProviderId) -> Result<Vec<Provider>> {
        let (cloud_provider, providers) = self
            .repo
            .cloud_with_providers(cloud)
            .await?
            .ok_or_else(|| Error::not_found(NotFoundKind::CloudProvider, cloud))?;
        Ok(providers
            .iter()
            .map(|p| p.to_wire(Some(&cloud_provider)))
            .collect())
    }

    /// The locations of a provider.
    pub async fn locations(&self, provider: ProviderId) -> Result<Vec<Location>> {
        let (record, _) = self.offers(provider).await?;
        Ok(record.locations)
    }

    /// The images a provider offers at a location (`_id` or datacenter name): those some
    /// price of the location names.
    pub async fn images(&self, provider: ProviderId, location: &str) -> Result<Vec<Image>> {
        let (record, offers) = self.offers(provider).await?;
        let at = located(&record, location)?;
        Ok(record
            .images
            .iter()
            .filter(|i| {
                offers
                    .prices
                    .iter()
                    .any(|p| p.location_name == at && p.image_name == i.distribution)
            })
            .cloned()
            .collect())
    }

    /// The prices of a provider for an image (its distribution, e.g. `Ubuntu`) at a location,
    /// each with its size.
    pub async fn prices(
        &self,
        provider: ProviderId,
        location: &str,
        image: &str,
    ) -> Result<Vec<PriceOffer>> {
        let (record, offers) = self.offers(provider).await?;
        let at = located(&record, location)?;
        if !record.images.iter().any(|i| i.distribution == image) {
            return Err(Error::not_found(NotFoundKind::Image, image));
        }
        Ok(offers
            .prices
            .iter()
            .filter(|p| p.location_name == at && p.image_name == image)
            .filter_map(|p| {
                // Each price names a size of its provider and location (`catalog import`
                // checks it); one that does not is left out rather than shown half.
                let size = offers
                    .sizes
                    .iter()
                    .find(|z| z.name == p.size_name && z.location == p.location_name)?;
                Some(PriceOffer {
                    price: p.clone(),
                    size: size.clone(),
                })
            })
            .collect())
    }

    /// A provider with its offers, or 404.
    async fn offers(&self, id: ProviderId) -> Result<(ProviderRecord, ProviderOffers)> {
        let mut offers = self.repo.provider_offers(id).await?;
        let record = offers
            .provider
            .take()
            .ok_or_else(|| Error::not_found(NotFoundKind::Provider, id))?;
        Ok((record, offers))
    }
}

/// The datacenter name of a provider's location given by `_id` or name, or 404.
fn located(record: &ProviderRecord, location: &str) -> Result<String> {
    record
        .location(location)
        .map(|l| l.region.datacenter.name.clone())
        .ok_or_else(|| Error::not_found(NotFoundKind::Location, location))
}
