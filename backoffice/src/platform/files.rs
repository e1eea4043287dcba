//! The file store: where documents of a case file (fascicolo) live. A local directory by
//! default, or an S3-compatible bucket through `object_store`.

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use crate::StoreError;

const READY_MARKER: &str = ".accordo/ready";

/// A handle to the file store.
#[derive(Debug, Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
}

impl FileStore {
    /// Opens the store at `location`: a local directory path (created when missing), or
    /// `s3://bucket` with the endpoint, region and keys taken from the standard `AWS_*`
    /// environment variables (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` for a plain-HTTP endpoint such as MinIO).
    pub fn open(location: &str) -> Result<Self, StoreError> {
        let store: Arc<dyn ObjectStore> = if let Some(bucket) = location.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            if bucket.is_empty() || bucket.contains('/') {
                return Err(StoreError::FileStoreLocation(
                    "an S3 location is s3://BUCKET".to_owned(),
                ));
            }
            Arc::new(
                AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()?,
            )
        } else {
            std::fs::create_dir_all(location)
                .map_err(|error| StoreError::FileStoreLocation(error.to_string()))?;
            Arc::new(LocalFileSystem::new_with_prefix(location)?)
        };
        Ok(Self { store })
    }

    /// Writes the marker that [`FileStore::is_ready`] looks for; called at start.
    pub async fn mark_ready(&self) -> Result<(), StoreError> {
        self.store
            .put(&Path::from(READY_MARKER), PutPayload::from_static(b"ok"))
            .await?;
        Ok(())
    }

    /// Whether the store answers and holds the start-up marker.
    pub async fn is_ready(&self) -> bool {
        self.store.head(&Path::from(READY_MARKER)).await.is_ok()
    }

    /// Writes `bytes` at `path` (slash-separated), replacing what was there.
    pub async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.store
            .put(&Path::from(path), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Writes `bytes` at `path`, then runs `record` (the database side); when `record` fails the
    /// bytes are removed again, so that no file is stored without its row.
    pub async fn put_recorded<F, E>(&self, path: &str, bytes: Vec<u8>, record: F) -> Result<(), E>
    where
        F: std::future::Future<Output = Result<(), E>>,
        E: From<StoreError>,
    {
        self.put(path, bytes).await?;
        if let Err(error) = record.await {
            self.delete(path).await?;
            return Err(error);
        }
        Ok(())
    }

    /// The bytes at `path`.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        let bytes = self.store.get(&Path::from(path)).await?.bytes().await?;
        Ok(bytes.to_vec())
    }

    /// Removes `path` (nothing happens if it is not there).
    pub async fn delete(&self, path: &str) -> Result<(), StoreError> {
        match self.store.delete(&Path::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_store_is_created_and_becomes_ready() {
        let dir = tempfile::tempdir().expect("temp dir");
        let location = dir.path().join("files");
        let store = FileStore::open(location.to_str().expect("utf-8 path")).expect("open");
        assert!(!store.is_ready().await);
        store.mark_ready().await.expect("mark");
        assert!(store.is_ready().await);
    }

    #[test]
    fn an_s3_location_needs_a_bucket() {
        assert!(matches!(
            FileStore::open("s3://"),
            Err(StoreError::FileStoreLocation(_))
        ));
    }
}
