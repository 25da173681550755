//! `Few`: at most `N` values held inline, for the handful of fixed points (and the
//! Jacobians at them) every run's node has: a quartic has at most three positive roots,
//! and finding them for a million runs should not allocate a million vectors.

use std::ops::Deref;

/// Up to `N` values of `T`, in order, without a heap allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Few<T, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Few<T, N> {
    /// None yet.
    pub fn new() -> Self {
        Few {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// Appends `x`.
    ///
    /// # Panics
    /// When `N` values are held already: the callers know their bound.
    pub fn push(&mut self, x: T) {
        assert!(self.len < N, "more than {N} values");
        self.items[self.len] = x;
        self.len += 1;
    }
}

impl<T: Copy + Default, const N: usize> Default for Few<T, N> {
    fn default() -> Self {
        Few::new()
    }
}

impl<T, const N: usize> Deref for Few<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl<T, const N: usize> IntoIterator for Few<T, N> {
    type Item = T;
    type IntoIter = std::iter::Take<std::array::IntoIter<T, N>>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter().take(self.len)
    }
}

impl<T: Copy + Default, const N: usize> FromIterator<T> for Few<T, N> {
    /// # Panics
    /// When the iterator yields more than `N` values.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut few = Few::new();
        iter.into_iter().for_each(|x| few.push(x));
        few
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_pushed_in_order() {
        let few: Few<u8, 3> = [4, 5].into_iter().collect();
        assert_eq!(&*few, &[4, 5]);
        assert_eq!(few.into_iter().collect::<Vec<_>>(), [4, 5]);
        assert!(Few::<u8, 3>::new().is_empty());
    }

    #[test]
    #[should_panic(expected = "more than 2 values")]
    fn refuses_more_than_its_capacity() {
        let _: Few<u8, 2> = [1, 2, 3].into_iter().collect();
    }
}
